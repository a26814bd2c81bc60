"""Every port the pair uses, in one place. The product's shift with `[server] offset` (the toolkit sets none)."""

# The load balancer's listeners.
HTTPS = 443  # management (portals, /services) behind TLS
HTTP = 80  # browsers only: redirected to HTTPS

# A node's, as WSO2 API-M opens them (WSO2's active-active page and its facts).
MANAGEMENT = 9443  # management HTTPS: portals, carbon, /services/
MANAGEMENT_HTTP = 9763  # management HTTP (/services/Version for health checks)
GATEWAY_HTTPS = 8243
WEBSOCKET_TLS = 8099
THROTTLE_BINARY = 9611  # throttle events (4.x: and the event hub), binary TCP
THROTTLE_AUTH = 9711  # the binary transport's SSL authentication
BROKER = 5672  # the embedded message broker (event_duplicate_url)
WEBSUB_HTTP = 9021  # 4.x WebSub receivers (not routed by the load balancer)
WEBSUB_HTTPS = 8021

# Between the peers only: what one node reaches on the other.
PEERS = {
    MANAGEMENT: "API-M management HTTPS (publishing, /services/)",
    THROTTLE_BINARY: "throttle events, binary TCP (traffic manager)",
    THROTTLE_AUTH: "throttle events, binary SSL auth (traffic manager)",
    BROKER: "message broker (event_duplicate_url)",
}

NFS = 2049  # a node to the EFS mount targets
SSH = 22  # content_sync = "rsync": node 1 to node 2
