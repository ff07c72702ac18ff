package access

import (
	"net"
	"net/netip"
	"strings"

	"github.com/aios-go/aios/api"
)

// CheckListen refuses to serve on addr without authentication unless addr is loopback
// only, or the operator explicitly accepted the risk (insecureOverride). Without auth
// anyone who reaches the port can call every model, read every agent's memory and
// files and use the admin API; on loopback that is "anyone on this machine", which is
// the trust a local development kernel already has.
//
// Loopback means an IP literal in 127.0.0.0/8 or ::1, or the name "localhost"; every
// other name is treated as reachable from elsewhere, since what it resolves to may
// change (and resolving here would put DNS in the way of start-up). An empty host
// (":8000") listens on every interface.
func CheckListen(addr string, authEnabled, insecureOverride bool) error {
	if authEnabled || insecureOverride {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return api.Wrap(api.CallerBadRequest, err, "access: cannot tell which interface %q listens on; give host:port", addr)
	}
	if isLoopback(host) {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return api.Errorf(api.CallerBadRequest,
		"refusing to listen on %s (%s) without authentication: anyone who can reach it could call every model and read every agent's data. "+
			"Turn authentication on (access.auth: true, then issue keys with aios agents add), listen on 127.0.0.1, "+
			"or accept the risk explicitly with --insecure-no-auth", addr, shown)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback() && ip.Zone() == ""
}
