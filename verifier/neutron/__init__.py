"""neutron."""
