"""Outputs: console lines, summaries, exports, pcap writing, JSONL streams."""
