"""The conductor role: orchestrates multi-service operations."""
