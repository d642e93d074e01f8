"""The console: server-rendered pages over the other services' APIs, with the user's key."""
