"""The inflight role: probes every registered service's RPC path."""
