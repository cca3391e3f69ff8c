package httpx

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the addresses whose X-Forwarded-For header is
// believed: the load balancers in front of this node. From anyone else the
// header is ignored, since a client can write whatever it likes there.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads a comma-separated list of CIDR prefixes or
// single addresses ("10.0.0.0/8, 127.0.0.1, ::1").
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var tp TrustedProxies
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", f, err)
			}
			tp = append(tp, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", f)
		}
		a = a.Unmap()
		tp = append(tp, netip.PrefixFrom(a, a.BitLen()))
	}
	return tp, nil
}

func (tp TrustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range tp {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IsProxy reports whether r came straight from one of the trusted proxies,
// whose forwarding headers (X-Forwarded-For, X-Forwarded-Proto) may then
// be believed.
func (tp TrustedProxies) IsProxy(r *http.Request) bool {
	addr, err := netip.ParseAddr(hostOf(r.RemoteAddr))
	return err == nil && tp.trusts(addr)
}

// OverTLS reports whether the client reached us over TLS: directly, or
// through a trusted proxy that terminated TLS and says so in the
// X-Forwarded-Proto it wrote (the first entry, the outermost proxy's).
func (tp TrustedProxies) OverTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !tp.IsProxy(r) {
		return false
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}

// ClientAddr returns the address of the client that sent r. It starts at
// the peer address and, while that is a trusted proxy, steps one hop back
// through X-Forwarded-For (whose entries are appended left to right by
// each proxy). The first untrusted address is the client: anything to its
// left was written by that client and proves nothing.
func (tp TrustedProxies) ClientAddr(r *http.Request) string {
	peer := hostOf(r.RemoteAddr)
	addr, err := netip.ParseAddr(peer)
	if err != nil || !tp.trusts(addr) {
		return peer
	}
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	client := addr
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			break // garbage from a client: stop at the last good hop
		}
		client = a.Unmap()
		if !tp.trusts(client) {
			break
		}
	}
	return client.String()
}

// forwardedFor splits every X-Forwarded-For header into its entries.
func forwardedFor(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, hostOf(h))
			}
		}
	}
	return hops
}

// hostOf strips a port (and IPv6 brackets) if there is one.
func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return strings.Trim(s, "[]")
}

type clientAddrKey struct{}

// ClientAddr returns the client address found by the RealIP middleware, or
// the peer address without it.
func ClientAddr(r *http.Request) string {
	if a, ok := r.Context().Value(clientAddrKey{}).(string); ok {
		return a
	}
	return hostOf(r.RemoteAddr)
}

// RealIP records each request's client address (see
// TrustedProxies.ClientAddr) for logs and anything else that needs it.
func RealIP(tp TrustedProxies) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), clientAddrKey{}, tp.ClientAddr(r))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// StrictTransportSecurity makes browsers that reached us over HTTPS (see
// OverTLS) use nothing else for this site for a year (HSTS), so a network
// attacker cannot later strip them down to plain HTTP. It is not sent over
// plain HTTP, where browsers ignore it and where a stage-1 node on a LAN
// must keep working.
func StrictTransportSecurity(tp TrustedProxies) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tp.OverTLS(r) {
				w.Header().Set("Strict-Transport-Security", "max-age=31536000")
			}
			next.ServeHTTP(w, r)
		})
	}
}
