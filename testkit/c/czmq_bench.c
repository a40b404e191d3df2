/*  czmq_bench: the CZMQ 4.2 side of zproto-rs's zgossip benchmark
    (cli/benches/zgossip.rs). It runs CZMQ's zgossip actor and drives it with raw
    DEALER sockets, exactly as the Rust side drives our node, and prints the
    elapsed time in nanoseconds.

        czmq_bench pingpong TRANSPORT COUNT WINDOW
            COUNT PING/PONG round trips, WINDOW PINGs in flight
        czmq_bench ingest TRANSPORT COUNT
            HELLO, then COUNT ANNOUNCEs of distinct tuples; until STATUS = COUNT
        czmq_bench fanout TRANSPORT SESSIONS COUNT
            SESSIONS peers say HELLO; the node's application publishes COUNT
            tuples; until every peer has received every one
        czmq_bench join TRANSPORT COUNT
            the node's application publishes COUNT tuples; then a fresh
            node connects to it; from its CONNECT until its STATUS = COUNT
            (-1 if not within two minutes)

    TRANSPORT is inproc, ipc or tcp (loopback).
*/
#include <czmq.h>
#include <string.h>

static int64_t
s_now_ns (void)
{
    return zclock_usecs () * 1000;
}

static const byte PING [] = { 0xAA, 0xA0, 0x03, 0x01 };
static const byte HELLO [] = { 0xAA, 0xA0, 0x01, 0x01 };

/*  Start a zgossip node on TRANSPORT; write the endpoint to connect to. */
static zactor_t *
s_node (const char *transport, char *endpoint, size_t size)
{
    zactor_t *node = zactor_new (zgossip, "bench");
    assert (node);
    //  Sessions must outlive the benchmark (CZMQ's default is 1000 ms).
    zstr_sendx (node, "SET", "server/timeout", "600000", NULL);
    if (streq (transport, "tcp")) {
        zstr_sendx (node, "BIND", "tcp://127.0.0.1:*", NULL);
        zstr_sendx (node, "PORT", NULL);
        char *command, *port;
        zstr_recvx (node, &command, &port, NULL);
        snprintf (endpoint, size, "tcp://127.0.0.1:%s", port);
        zstr_free (&command);
        zstr_free (&port);
    }
    else {
        if (streq (transport, "ipc"))
            snprintf (endpoint, size, "ipc:///tmp/zgossip-czmq-bench-%d.ipc", getpid ());
        else
            snprintf (endpoint, size, "inproc://zgossip-czmq-bench");
        zstr_sendx (node, "BIND", endpoint, NULL);
    }
    return node;
}

static void *
s_dealer (const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_sndhwm (dealer, 0);
    zsock_set_rcvhwm (dealer, 0);
    int rc = zsock_connect (dealer, "%s", endpoint);
    assert (rc == 0);
    return dealer;
}

static void
s_send (zsock_t *dealer, const void *data, size_t size)
{
    int rc = zmq_send (zsock_resolve (dealer), data, size, 0);
    assert (rc == (int) size);
}

static void
s_recv (zsock_t *dealer)
{
    byte buffer [512];
    int rc = zmq_recv (zsock_resolve (dealer), buffer, sizeof buffer, 0);
    assert (rc >= 4);
}

static int64_t
s_pingpong (zactor_t *node, const char *endpoint, int count, int window)
{
    zsock_t *dealer = s_dealer (endpoint);
    //  Warm up: the connection is up once a PONG comes back.
    s_send (dealer, PING, sizeof PING);
    s_recv (dealer);
    int64_t start = s_now_ns ();
    int sent = 0, received = 0;
    while (sent < window && sent < count) {
        s_send (dealer, PING, sizeof PING);
        sent++;
    }
    while (received < count) {
        s_recv (dealer);
        received++;
        if (sent < count) {
            s_send (dealer, PING, sizeof PING);
            sent++;
        }
    }
    int64_t elapsed = s_now_ns () - start;
    zsock_destroy (&dealer);
    return elapsed;
}

/*  A PUBLISH frame for tuple number N. */
static size_t
s_publish (int n, byte *frame)
{
    char key [64], value [64];
    snprintf (key, sizeof key, "tcp://10.%d.%d.%d:9000", (n >> 16) & 255, (n >> 8) & 255, n & 255);
    snprintf (value, sizeof value, "service-%d", n);
    size_t key_size = strlen (key), value_size = strlen (value);
    byte *p = frame;
    *p++ = 0xAA; *p++ = 0xA0; *p++ = 0x02; *p++ = 0x01;
    *p++ = (byte) key_size;
    memcpy (p, key, key_size); p += key_size;
    *p++ = 0; *p++ = 0; *p++ = (byte) (value_size >> 8); *p++ = (byte) value_size;
    memcpy (p, value, value_size); p += value_size;
    *p++ = 0; *p++ = 0; *p++ = 0; *p++ = 0;
    return p - frame;
}

static int
s_status (zactor_t *node)
{
    zstr_sendx (node, "STATUS", NULL);
    while (true) {
        char *command = zstr_recv (node);
        if (command && streq (command, "STATUS")) {
            char *count = zstr_recv (node);
            int status = atoi (count);
            zstr_free (&count);
            zstr_free (&command);
            return status;
        }
        //  A DELIVER: drop its two other frames.
        if (command && streq (command, "DELIVER")) {
            char *key, *value;
            zstr_recvx (node, &key, &value, NULL);
            zstr_free (&key);
            zstr_free (&value);
        }
        zstr_free (&command);
    }
}

static int64_t
s_ingest (zactor_t *node, const char *endpoint, int count)
{
    zsock_t *dealer = s_dealer (endpoint);
    s_send (dealer, HELLO, sizeof HELLO);
    s_send (dealer, PING, sizeof PING);
    s_recv (dealer);
    byte frame [256];
    int64_t start = s_now_ns ();
    for (int n = 0; n < count; n++) {
        size_t size = s_publish (n, frame);
        s_send (dealer, frame, size);
    }
    while (s_status (node) < count)
        ;
    int64_t elapsed = s_now_ns () - start;
    zsock_destroy (&dealer);
    return elapsed;
}

static int64_t
s_fanout (zactor_t *node, const char *endpoint, int sessions, int count)
{
    zsock_t **dealers = (zsock_t **) zmalloc (sessions * sizeof (zsock_t *));
    for (int s = 0; s < sessions; s++) {
        dealers [s] = s_dealer (endpoint);
        s_send (dealers [s], HELLO, sizeof HELLO);
        s_send (dealers [s], PING, sizeof PING);
    }
    for (int s = 0; s < sessions; s++)
        s_recv (dealers [s]);
    int64_t start = s_now_ns ();
    for (int n = 0; n < count; n++) {
        char key [64], value [64];
        snprintf (key, sizeof key, "tcp://10.%d.%d.%d:9000", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        snprintf (value, sizeof value, "service-%d", n);
        zstr_sendx (node, "PUBLISH", key, value, NULL);
    }
    for (int s = 0; s < sessions; s++)
        for (int n = 0; n < count; n++)
            s_recv (dealers [s]);
    int64_t elapsed = s_now_ns () - start;
    for (int s = 0; s < sessions; s++)
        zsock_destroy (&dealers [s]);
    free (dealers);
    return elapsed;
}

static int64_t
s_join (zactor_t *server, const char *endpoint, int count)
{
    for (int n = 0; n < count; n++) {
        char key [64], value [64];
        snprintf (key, sizeof key, "tcp://10.%d.%d.%d:9000", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        snprintf (value, sizeof value, "service-%d", n);
        zstr_sendx (server, "PUBLISH", key, value, NULL);
    }
    while (s_status (server) < count)
        zclock_sleep (1);
    zactor_t *joiner = zactor_new (zgossip, "joiner");
    assert (joiner);
    int64_t start = s_now_ns ();
    int64_t deadline = start + (int64_t) 120 * 1000000000;
    zstr_sendx (joiner, "CONNECT", endpoint, NULL);
    int64_t elapsed = -1;
    while (s_now_ns () < deadline) {
        if (s_status (joiner) >= count) {
            elapsed = s_now_ns () - start;
            break;
        }
        zclock_sleep (1);
    }
    zactor_destroy (&joiner);
    return elapsed;
}

int
main (int argc, char *argv [])
{
    if (argc < 4) {
        fprintf (stderr, "usage: czmq_bench pingpong|ingest|fanout|join TRANSPORT ARGS...\n");
        return 2;
    }
    //  The actor's DELIVER messages would pile up unread during fan-out.
    zsys_set_sndhwm (0);
    zsys_set_rcvhwm (0);
    char endpoint [256];
    zactor_t *node = s_node (argv [2], endpoint, sizeof endpoint);
    int64_t elapsed = 0;
    if (streq (argv [1], "pingpong") && argc == 5)
        elapsed = s_pingpong (node, endpoint, atoi (argv [3]), atoi (argv [4]));
    else
    if (streq (argv [1], "ingest") && argc == 4)
        elapsed = s_ingest (node, endpoint, atoi (argv [3]));
    else
    if (streq (argv [1], "fanout") && argc == 5)
        elapsed = s_fanout (node, endpoint, atoi (argv [3]), atoi (argv [4]));
    else
    if (streq (argv [1], "join") && argc == 4)
        elapsed = s_join (node, endpoint, atoi (argv [3]));
    else {
        fprintf (stderr, "czmq_bench: bad arguments\n");
        return 2;
    }
    printf ("%" PRId64 "\n", elapsed);
    zactor_destroy (&node);
    if (streq (argv [2], "ipc")) {
        char path [256];
        snprintf (path, sizeof path, "/tmp/zgossip-czmq-bench-%d.ipc", getpid ());
        remove (path);
    }
    return 0;
}
