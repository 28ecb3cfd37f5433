"""Packets as files: reading tcpdump's pcap stream and writing pcapng (pure, no engine)."""
