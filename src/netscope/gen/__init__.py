"""NetScope's own deterministic, seeded trace generator and packet-building helpers.

* :mod:`netscope.gen.packets` builds single packets layer by layer (for hand-made test traces).
* :mod:`netscope.gen.pcapfile` writes classic pcap and pcapng files in every variant the
  readers must accept.
* :mod:`netscope.gen.traffic` generates large realistic traces with a ground truth, plus attack
  scenarios (SYN flood, port scan) for the anomaly detectors.

Run ``python -m netscope.gen --help`` for the command-line front end. Nothing here imports
numpy or numba, so generating a trace stays cheap.
"""
