"""Administration over HTTP: registering what the network is made of."""
