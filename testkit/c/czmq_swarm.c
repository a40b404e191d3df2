/*  czmq_swarm: the CZMQ 4.2 side of `zgossip swarm --transport czmq`.

        czmq_swarm NODES TOPOLOGY LINKS SEED TIMEOUT_S

    Runs NODES zgossip actors of CZMQ in this process over inproc, linked
    as `zgossip swarm` links its nodes (TOPOLOGY tree: each node connects to
    one random earlier node; graph: to LINKS distinct random earlier nodes,
    or all of them when fewer), and has every node publish one tuple. It
    counts each node's DELIVER messages until every node has heard every
    other node's tuple, or TIMEOUT_S seconds pass, and prints one line:

        converged=0|1 elapsed_ms=E setup_ms=S complete=C peak_kib=K threads=T

    CZMQ's session timeout is raised to 60 s (its default, 1 s, expires
    sessions under load, and CZMQ's remotes never PING).
*/
#include <czmq.h>
#include <string.h>
#include <unistd.h>

static uint64_t s_rng;

/*  The next random number below `n` (xorshift64*). */
static size_t
s_below (size_t n)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return (size_t) ((s_rng * 2685821657736338717ULL) % (uint64_t) n);
}

/*  A number from /proc/self/status, e.g. "VmHWM:". */
static long
s_status_field (const char *name)
{
    FILE *file = fopen ("/proc/self/status", "r");
    if (!file)
        return -1;
    char line [256];
    long value = -1;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, name, strlen (name)) == 0) {
            value = atol (line + strlen (name));
            break;
        }
    fclose (file);
    return value;
}

int
main (int argc, char *argv [])
{
    if (argc != 6) {
        fprintf (stderr, "usage: czmq_swarm NODES tree|graph LINKS SEED TIMEOUT_S\n");
        return 2;
    }
    size_t nodes = (size_t) atol (argv [1]);
    bool graph = streq (argv [2], "graph");
    size_t links = (size_t) atol (argv [3]);
    s_rng = (uint64_t) atoll (argv [4]) * 0x9E3779B97F4A7C15ULL + 1;
    int64_t timeout_ms = atoll (argv [5]) * 1000;
    if (nodes < 1 || nodes > 100000 || (graph && links < 1)) {
        fprintf (stderr, "czmq_swarm: bad arguments\n");
        return 2;
    }
    zsys_set_max_sockets (0);
    zsys_set_sndhwm (0);
    zsys_set_rcvhwm (0);
    int64_t setup_start = zclock_mono ();
    zactor_t **actor = (zactor_t **) zmalloc (nodes * sizeof (zactor_t *));
    size_t *heard = (size_t *) zmalloc (nodes * sizeof (size_t));
    char endpoint [64];
    for (size_t i = 0; i < nodes; i++) {
        actor [i] = zactor_new (zgossip, "swarm");
        if (!actor [i]) {
            fprintf (stderr, "czmq_swarm: node %zu cannot start (descriptors?)\n", i);
            return 1;
        }
        zstr_sendx (actor [i], "SET", "server/timeout", "60000", NULL);
        snprintf (endpoint, sizeof endpoint, "inproc://czmq-swarm-%d-%zu", getpid (), i);
        zstr_sendx (actor [i], "BIND", endpoint, NULL);
    }
    bool *chosen = (bool *) zmalloc (nodes * sizeof (bool));
    for (size_t i = 1; i < nodes; i++) {
        size_t want = graph? (links < i? links: i): 1;
        memset (chosen, 0, i * sizeof (bool));
        for (size_t made = 0; made < want; ) {
            size_t j = want == i? made: s_below (i);
            if (chosen [j])
                continue;
            chosen [j] = true;
            made++;
            snprintf (endpoint, sizeof endpoint, "inproc://czmq-swarm-%d-%zu", getpid (), j);
            zstr_sendx (actor [i], "CONNECT", endpoint, NULL);
        }
    }
    int64_t setup_ms = zclock_mono () - setup_start;

    int64_t start = zclock_mono ();
    char key [64], value [64];
    for (size_t i = 0; i < nodes; i++) {
        snprintf (key, sizeof key, "tcp://10.%zu.%zu.%zu:9000",
                  (i >> 16) & 255, (i >> 8) & 255, i & 255);
        snprintf (value, sizeof value, "service-%zu", i);
        zstr_sendx (actor [i], "PUBLISH", key, value, NULL);
    }
    size_t complete = nodes == 1? 1: 0;
    //  Sweep every node's pipe, as `zgossip swarm` sweeps its nodes'
    //  deliveries (a zpoller over a thousand pipes costs a thousand
    //  checks per message); rest 10 ms when a sweep found nothing.
    while (complete < nodes && zclock_mono () - start < timeout_ms) {
        size_t got = 0;
        for (size_t i = 0; i < nodes; i++)
            while (zsock_events (actor [i]) & ZMQ_POLLIN) {
                zmsg_t *msg = zmsg_recv (actor [i]);
                if (!msg)
                    break;
                got++;
                char *command = zmsg_popstr (msg);
                if (command && streq (command, "DELIVER") && ++heard [i] == nodes - 1)
                    complete++;
                zstr_free (&command);
                zmsg_destroy (&msg);
            }
        if (got == 0)
            zclock_sleep (10);
    }
    int64_t elapsed = zclock_mono () - start;
    printf ("converged=%d elapsed_ms=%" PRId64 " setup_ms=%" PRId64
            " complete=%zu peak_kib=%ld threads=%ld\n",
            complete == nodes, elapsed, setup_ms, complete,
            s_status_field ("VmHWM:"), s_status_field ("Threads:"));
    fflush (stdout);
    //  No teardown: destroying a thousand linked actors takes longer than
    //  the run, and can hang on a session that is mid-replay.
    _exit (complete == nodes? 0: 1);
}
