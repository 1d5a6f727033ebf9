"""Payment: Authorises, captures, voids and refunds through a gateway."""
