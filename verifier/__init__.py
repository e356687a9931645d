"""A formal reachability verifier for OpenStack Neutron (ML2/OVS) dataplanes."""

__version__ = "0.1.0"
