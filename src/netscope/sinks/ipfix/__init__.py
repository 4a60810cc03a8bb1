"""IPFIX export (RFC 7011, biflows per RFC 5103): encoder, sender, flow-table glue."""
