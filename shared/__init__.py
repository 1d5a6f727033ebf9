"""What the services share without depending on each other: the message envelope and type
registry (`envelope`), the topic registry (`topics`), exact money (`money`), the message contracts
each producer owns (`contracts`), the platform every service runs on (`platform`) and the tools
operators run, also in the image (`ops`). Nothing here imports a service."""
