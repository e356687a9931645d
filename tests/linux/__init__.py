"""Tests against real Linux: network namespaces, iptables, conntrack, bridges (``support.netns_lab``)."""
