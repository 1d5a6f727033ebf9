"""Order intake: Receives orders from every channel and orchestrates the order saga."""
