"""nftables through libnftables (no ``nft`` process per change): :class:`~.libnft.Nft`."""

from pykeepalived.nft.libnft import Nft, NftError, NftUnavailable

__all__ = ["Nft", "NftError", "NftUnavailable"]
