"""The I/O shell of the VRRP subsystem: sockets, announcements, the asyncio driver."""
