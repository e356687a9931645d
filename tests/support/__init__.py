"""Test support code (real-OVS sandbox, real-Linux namespaces, generators)."""
