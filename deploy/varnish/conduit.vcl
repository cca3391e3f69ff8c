# Varnish in front of Conduit (stage 6): the edge cache / CDN.
#
# Template: scripts/stage3.sh and the tests (internal/cdndrill,
# internal/varnishtest) replace
#   @BACKEND_HOST@ @BACKEND_PORT@  the load balancer (or a single node)
#   @PURGERS@                      one ACL entry per line for the Conduit
#                                  nodes allowed to purge, e.g. "10.0.0.0"/24;
# For real machines put the values in by hand or with your config tool.
# Tested with Varnish 7.1 (Debian 12); run it with, e.g.,
#   varnishd -F -a :6081 -T 127.0.0.1:6082 -f conduit.vcl -s malloc,1g
#
# What this does (docs/stage6.md has the policy per route):
# * Requests with credentials (an Authorization header or a conduit_*
#   cookie: the session, a flash message) and every write go to Conduit:
#   signed-in answers are never stored, never served to anyone else.
# * Every other cookie is dropped, so anonymous visitors share one copy.
# * Accept-Encoding is reduced to "zstd", "gzip" or nothing: the cache holds
#   at most three copies of an answer (Conduit sends Vary: Accept-Encoding),
#   not one per browser's spelling of the header.
# * What is stored, and for how long, is Conduit's call: only answers with
#   "public" or "s-maxage" in Cache-Control (anonymous reads, static files),
#   for s-maxage; anything else is passed.
# * Purges: a node sends "PURGE /" with "Surrogate-Key: k1 k2 ..." after a
#   write; every stored answer tagged with one of the keys is banned
#   (without the xkey vmod, a ban on the Surrogate-Key header). Only the
#   addresses in the purgers ACL may purge.
# * Grace: an expired answer is served while it is refreshed in the
#   background for up to 30 s (Conduit's stale-while-revalidate) when
#   Conduit is healthy, and for up to its stale-if-error (a day) while the
#   health probe says it is down: anonymous readers keep reading through a
#   web-tier outage.
vcl 4.1;

import std;

backend conduit {
    .host = "@BACKEND_HOST@";
    .port = "@BACKEND_PORT@";
    .connect_timeout = 1s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
    # The balancer's /readyz answers 503 when no node is ready: then the
    # backend is sick and stale answers are served (see grace above).
    .probe = {
        .url = "/readyz";
        .interval = 1s;
        .timeout = 1s;
        .window = 3;
        .threshold = 2;
        .initial = 2;
    }
}

acl purgers {
@PURGERS@
}

sub vcl_recv {
    # Our own markers are never taken from a client.
    unset req.http.X-Conduit-Pass;
    unset req.http.X-Conduit-AE;
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        # Keys are words of [a-z0-9-]: nothing else may reach the pattern.
        if (req.http.Surrogate-Key !~ "^[a-z0-9-]+( [a-z0-9-]+)*$") {
            return (synth(400, "Bad Surrogate-Key"));
        }
        ban("obj.http.Surrogate-Key ~ (^|\s)(" + regsuball(req.http.Surrogate-Key, " ", "|") + ")($|\s)");
        return (synth(200, "Banned"));
    }
    if (req.url ~ "^/(healthz|readyz)$") {
        return (pass);
    }

    # Static files are the same for everyone, signed in or not.
    if (req.url ~ "^/static/" || req.url == "/favicon.ico") {
        unset req.http.Cookie;
    }
    # Keep only Conduit's own cookies (conduit_*); drop the rest
    # (analytics and the like), which Conduit never reads.
    if (req.http.Cookie) {
        set req.http.Cookie = ";" + req.http.Cookie;
        set req.http.Cookie = regsuball(req.http.Cookie, "; +", ";");
        set req.http.Cookie = regsuball(req.http.Cookie, ";(conduit_[A-Za-z0-9_]*)=", "; \1=");
        set req.http.Cookie = regsuball(req.http.Cookie, ";[^ ][^;]*", "");
        set req.http.Cookie = regsuball(req.http.Cookie, "^[; ]+|[; ]+$", "");
        if (req.http.Cookie == "") {
            unset req.http.Cookie;
        }
    }

    # One spelling per coding Conduit sends, zstd first (as Conduit
    # chooses); a coding refused with q=0 is not chosen.
    if (req.http.Accept-Encoding ~ "(?i)(^|,)\s*zstd\s*(;\s*q=(1(\.0*)?|0?\.[0-9]*[1-9][0-9]*)\s*)?(,|$)") {
        set req.http.Accept-Encoding = "zstd";
    } elsif (req.http.Accept-Encoding ~ "(?i)(^|,)\s*(x-)?gzip\s*(;\s*q=(1(\.0*)?|0?\.[0-9]*[1-9][0-9]*)\s*)?(,|$)") {
        set req.http.Accept-Encoding = "gzip";
    } else {
        unset req.http.Accept-Encoding;
    }
    # Varnish's own gzip handling would rewrite this on the way to the
    # backend; keep our choice for vcl_backend_fetch.
    if (req.http.Accept-Encoding) {
        set req.http.X-Conduit-AE = req.http.Accept-Encoding;
    } else {
        unset req.http.X-Conduit-AE;
    }

    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.http.Authorization || req.http.Cookie) {
        return (pass);
    }
    # Healthy Conduit: serve an expired answer at most for the
    # stale-while-revalidate window while it is fetched again. Sick: as
    # long as the object's grace (stale-if-error) allows.
    if (std.healthy(req.backend_hint)) {
        set req.grace = 30s;
    }
    return (hash);
}

# One copy per coding: the normalised Accept-Encoding is part of the key.
# Conduit's Vary: Accept-Encoding says the same, but with Varnish's own gzip
# support (http_gzip_support, on by default) Varnish rewrites
# Accept-Encoding to "gzip" or nothing after vcl_recv, and would serve a
# zstd copy to a client that asked for none; so the key uses our copy.
sub vcl_hash {
    hash_data(req.url);
    if (req.http.host) {
        hash_data(req.http.host);
    } else {
        hash_data(server.ip);
    }
    hash_data("ae=" + req.http.X-Conduit-AE);
    return (lookup);
}

sub vcl_pass {
    set req.http.X-Conduit-Pass = "1";
}

sub vcl_backend_fetch {
    if (bereq.http.X-Conduit-AE) {
        set bereq.http.Accept-Encoding = bereq.http.X-Conduit-AE;
    } else {
        unset bereq.http.Accept-Encoding;
    }
    unset bereq.http.X-Conduit-AE;
    unset bereq.http.X-Conduit-Pass;
}

sub vcl_backend_response {
    # A failed background refresh keeps the stale copy being served.
    if (bereq.is_bgfetch && beresp.status >= 500) {
        return (abandon);
    }
    if (bereq.uncacheable) {
        return (deliver);
    }
    # Store only what Conduit marks shareable.
    if (beresp.http.Set-Cookie || beresp.http.Cache-Control !~ "(public|s-maxage)" ||
        beresp.http.Cache-Control ~ "(private|no-store|no-cache)") {
        set beresp.uncacheable = true;
        set beresp.ttl = 120s;
        return (deliver);
    }
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control, "^.*stale-if-error=([0-9]+).*$", "\1") + "s", 0s);
    }
    # Past ttl and grace, keep the copy a while to revalidate it with its
    # ETag (a 304 instead of the body).
    set beresp.keep = 10m;
    # Varnish must not recompress what Conduit encoded for this request.
    set beresp.do_gzip = false;
    set beresp.do_gunzip = false;
    return (deliver);
}

sub vcl_deliver {
    # The keys name internal ids: they stay here.
    unset resp.http.Surrogate-Key;
    if (req.http.X-Conduit-Pass) {
        set resp.http.X-Cache = "PASS";
    } elsif (obj.hits > 0 && obj.ttl < 0s) {
        set resp.http.X-Cache = "HIT-STALE";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
