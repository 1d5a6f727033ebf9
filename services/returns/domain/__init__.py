"""The returns service's pure domain: money, the return policy, and the returns saga."""
