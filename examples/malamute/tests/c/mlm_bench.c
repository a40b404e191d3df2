/*  mlm_bench: the C side of benches/malamute.rs, on libmlm.a (our own
    program, measuring as upstream's mlm_perftest.c does).

      mlm_bench ENDPOINT stream COUNT    one writer sends COUNT "temp.*" and
                                         COUNT "rain.*" messages, one reader
                                         consumes "temp."; then an END
      mlm_bench ENDPOINT mailbox COUNT   COUNT mailbox round trips between
                                         two clients

    Prints "received=R usec=T": the messages the reader got (or the round
    trips done) and the microseconds it took. */

#include <malamute.h>

static mlm_client_t *
s_client (const char *endpoint, const char *address)
{
    mlm_client_t *client = mlm_client_new ();
    if (mlm_client_connect (client, endpoint, 5000, address)) {
        fprintf (stderr, "mlm_bench: cannot connect to %s\n", endpoint);
        exit (1);
    }
    return client;
}

/*  The next message, or NULL after 5 seconds of silence. */
static zmsg_t *
s_recv (mlm_client_t *client)
{
    zpoller_t *poller = zpoller_new (mlm_client_msgpipe (client), NULL);
    void *ready = zpoller_wait (poller, 5000);
    zpoller_destroy (&poller);
    return ready ? mlm_client_recv (client) : NULL;
}

int
main (int argc, char *argv [])
{
    if (argc != 4) {
        fprintf (stderr, "usage: mlm_bench ENDPOINT stream|mailbox COUNT\n");
        return 1;
    }
    const char *endpoint = argv [1];
    int count = atoi (argv [3]);
    int received = 0;
    int64_t start, usec;
    if (streq (argv [2], "stream")) {
        mlm_client_t *reader = s_client (endpoint, "bench-reader");
        mlm_client_t *writer = s_client (endpoint, "bench-writer");
        mlm_client_set_producer (writer, "weather");
        mlm_client_set_consumer (reader, "weather", "temp.");
        start = zclock_usecs ();
        for (int n = 0; n < count; n++) {
            mlm_client_sendx (writer, "temp.moscow", "10", NULL);
            mlm_client_sendx (writer, "rain.moscow", "0", NULL);
        }
        mlm_client_sendx (writer, "temp.signal", "END", NULL);
        while (true) {
            zmsg_t *msg = s_recv (reader);
            if (!msg)
                break;
            int end = streq (mlm_client_subject (reader), "temp.signal");
            zmsg_destroy (&msg);
            if (end)
                break;
            received++;
        }
        usec = zclock_usecs () - start;
        mlm_client_destroy (&reader);
        mlm_client_destroy (&writer);
    }
    else
    if (streq (argv [2], "mailbox")) {
        mlm_client_t *ping = s_client (endpoint, "bench-ping");
        mlm_client_t *pong = s_client (endpoint, "bench-pong");
        start = zclock_usecs ();
        for (int n = 0; n < count; n++) {
            mlm_client_sendtox (ping, "bench-pong", "ping", "x", NULL);
            zmsg_t *msg = s_recv (pong);
            if (!msg)
                break;
            zmsg_destroy (&msg);
            mlm_client_sendtox (pong, "bench-ping", "pong", "x", NULL);
            msg = s_recv (ping);
            if (!msg)
                break;
            zmsg_destroy (&msg);
            received++;
        }
        usec = zclock_usecs () - start;
        mlm_client_destroy (&ping);
        mlm_client_destroy (&pong);
    }
    else
        return 1;
    printf ("received=%d usec=%lld\n", received, (long long) usec);
    return 0;
}
