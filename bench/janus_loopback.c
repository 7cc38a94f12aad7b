/* LD_PRELOAD shim for the Janus benchmark peer: make Janus gather 127.0.0.1.
 *
 * Janus skips interfaces flagged IFF_LOOPBACK when it gathers ICE host candidates
 * (janus_ice_setup_local in src/ice.c), so on a loopback-only benchmark it would have no usable
 * candidate.  This getifaddrs() calls the real one and clears IFF_LOOPBACK on "lo"; with
 * ice_enforce_list = "lo" Janus then offers exactly 127.0.0.1.  Built by bench/janus_peer.py:
 *   gcc -shared -fPIC -O2 -o janus_loopback.so janus_loopback.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

int getifaddrs(struct ifaddrs **ifap)
{
    static int (*real_getifaddrs)(struct ifaddrs **) = NULL;
    if (real_getifaddrs == NULL)
        real_getifaddrs = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    if (real_getifaddrs == NULL)
        return -1;
    int rc = real_getifaddrs(ifap);
    if (rc == 0) {
        for (struct ifaddrs *i = *ifap; i != NULL; i = i->ifa_next) {
            if (i->ifa_name != NULL && strcmp(i->ifa_name, "lo") == 0)
                i->ifa_flags &= ~IFF_LOOPBACK;
        }
    }
    return rc;
}
