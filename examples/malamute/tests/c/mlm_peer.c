/*  mlm_peer: a small client of our own on the C Malamute library
    (libmlm.a), for the interop tests (tests/c_clients.rs). One role per
    run, one line on stdout per message:

      mlm_peer ENDPOINT ADDRESS sendto TO SUBJECT BODY    send to a mailbox
      mlm_peer ENDPOINT ADDRESS recv                      print one delivery
      mlm_peer ENDPOINT ADDRESS worker SERVICE PATTERN    answer one request
      mlm_peer ENDPOINT ADDRESS request SERVICE SUBJECT BODY
                                                          ask, print the answer
      mlm_peer ENDPOINT ADDRESS produce STREAM SUBJECT BODY
      mlm_peer ENDPOINT ADDRESS consume STREAM PATTERN    print one delivery

    A delivery prints as "COMMAND sender=S subject=T body=B". Exit status 0
    on success, 1 on any failure (an answer not within 10 seconds too). */

#include <malamute.h>

static int
s_print_one (mlm_client_t *client)
{
    zpoller_t *poller = zpoller_new (mlm_client_msgpipe (client), NULL);
    void *ready = zpoller_wait (poller, 10000);
    zpoller_destroy (&poller);
    if (!ready)
        return 1;
    zmsg_t *msg = mlm_client_recv (client);
    if (!msg)
        return 1;
    char *body = zmsg_popstr (msg);
    printf ("%s sender=%s subject=%s body=%s\n", mlm_client_command (client),
            mlm_client_sender (client), mlm_client_subject (client), body ? body : "");
    fflush (stdout);
    zstr_free (&body);
    zmsg_destroy (&msg);
    return 0;
}

static zmsg_t *
s_body (const char *text)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, text);
    return msg;
}

int
main (int argc, char *argv [])
{
    if (argc < 4) {
        fprintf (stderr, "usage: mlm_peer ENDPOINT ADDRESS ROLE ARGS...\n");
        return 1;
    }
    const char *endpoint = argv [1], *address = argv [2], *role = argv [3];
    mlm_client_t *client = mlm_client_new ();
    if (mlm_client_connect (client, endpoint, 5000, address)) {
        fprintf (stderr, "mlm_peer: cannot connect to %s\n", endpoint);
        mlm_client_destroy (&client);
        return 1;
    }
    int rc = 1;
    if (streq (role, "sendto") && argc == 7) {
        zmsg_t *msg = s_body (argv [6]);
        rc = mlm_client_sendto (client, argv [4], argv [5], NULL, 0, &msg);
        /*  A command round trip: the broker has the mail before we go. */
        if (rc == 0)
            rc = mlm_client_set_producer (client, "mlm-peer-flush");
    }
    else
    if (streq (role, "recv") && argc == 4)
        rc = s_print_one (client);
    else
    if (streq (role, "worker") && argc == 6) {
        rc = mlm_client_set_worker (client, argv [4], argv [5]);
        if (rc == 0) {
            printf ("ready\n");
            fflush (stdout);
            zpoller_t *poller = zpoller_new (mlm_client_msgpipe (client), NULL);
            void *ready = zpoller_wait (poller, 10000);
            zpoller_destroy (&poller);
            zmsg_t *msg = ready ? mlm_client_recv (client) : NULL;
            if (msg) {
                char *body = zmsg_popstr (msg);
                char answer [300];
                snprintf (answer, sizeof answer, "re: %s", body ? body : "");
                zmsg_t *reply = s_body (answer);
                rc = mlm_client_sendto (client, mlm_client_sender (client),
                                        mlm_client_subject (client), NULL, 0, &reply);
                if (rc == 0)
                    rc = mlm_client_set_producer (client, "mlm-peer-flush");
                zstr_free (&body);
                zmsg_destroy (&msg);
            }
            else
                rc = 1;
        }
    }
    else
    if (streq (role, "request") && argc == 7) {
        zmsg_t *msg = s_body (argv [6]);
        rc = mlm_client_sendfor (client, argv [4], argv [5], NULL, 0, &msg);
        if (rc == 0)
            rc = s_print_one (client);
    }
    else
    if (streq (role, "produce") && argc == 7) {
        rc = mlm_client_set_producer (client, argv [4]);
        if (rc == 0) {
            zmsg_t *msg = s_body (argv [6]);
            rc = mlm_client_send (client, argv [5], &msg);
        }
        /*  Another command round trip: the broker has the message. */
        if (rc == 0)
            rc = mlm_client_set_producer (client, argv [4]);
    }
    else
    if (streq (role, "consume") && argc == 6) {
        rc = mlm_client_set_consumer (client, argv [4], argv [5]);
        if (rc == 0) {
            printf ("ready\n");
            fflush (stdout);
            rc = s_print_one (client);
        }
    }
    else
        fprintf (stderr, "mlm_peer: bad role or arguments\n");
    mlm_client_destroy (&client);
    return rc == 0 ? 0 : 1;
}
