"""Tests of the capture-file readers (classic pcap and pcapng)."""
