"""The network side of VRRP: addresses, routes and rules reconciled over netlink, and GARP/NA."""
