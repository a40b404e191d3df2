/*  czmq_node: one CZMQ 4.2 zgossip node in a process of its own, for the
    interoperability tests of zproto-rs.

    It reads text commands on stdin, one per line, and passes them to CZMQ's
    zgossip actor as the multipart string commands the actor takes:

        BIND endpoint | CONNECT endpoint | PUBLISH key value | SET path value
        PORT | STATUS | VERBOSE | $TERM

    It prints one line per actor reply and per delivery, flushed at once:

        PORT n | STATUS n | DELIVER key value

    and "READY" once the actor runs. It exits on $TERM or end of input.
*/
#include <czmq.h>
#include <string.h>
#include <unistd.h>

static void
s_print_reply (zactor_t *actor)
{
    zmsg_t *msg = zmsg_recv (actor);
    if (!msg)
        return;
    char *command = zmsg_popstr (msg);
    if (command && streq (command, "DELIVER")) {
        char *key = zmsg_popstr (msg);
        char *value = zmsg_popstr (msg);
        printf ("DELIVER %s %s\n", key ? key : "", value ? value : "");
        zstr_free (&key);
        zstr_free (&value);
    }
    else
    if (command) {
        char *arg = zmsg_popstr (msg);
        printf ("%s %s\n", command, arg ? arg : "");
        zstr_free (&arg);
    }
    fflush (stdout);
    zstr_free (&command);
    zmsg_destroy (&msg);
}

/*  Pass one line to the actor. Returns -1 on $TERM. */
static int
s_command (zactor_t *actor, char *line)
{
    line [strcspn (line, "\r\n")] = 0;
    char *command = strtok (line, " ");
    if (!command)
        return 0;
    if (streq (command, "$TERM"))
        return -1;
    char *first = strtok (NULL, " ");
    char *rest = strtok (NULL, "");
    //  Certificates, for the certificate interop test: CERT-SAVE path makes
    //  and saves a key pair, CERT-LOAD path reads one; both print its
    //  public key (or NONE).
    if (streq (command, "CERT-SAVE") || streq (command, "CERT-LOAD")) {
        zcert_t *cert = NULL;
        if (first && streq (command, "CERT-SAVE")) {
            cert = zcert_new ();
            if (cert && zcert_save (cert, first) != 0)
                zcert_destroy (&cert);
        }
        else
        if (first)
            cert = zcert_load (first);
        printf ("CERT %s\n", cert ? zcert_public_txt (cert) : "NONE");
        if (cert && streq (command, "CERT-LOAD"))
            printf ("CERT-SECRET %s\n", streq (zcert_secret_txt (cert),
                    "0000000000000000000000000000000000000000") ? "no" : "yes");
        fflush (stdout);
        zcert_destroy (&cert);
        return 0;
    }
    if (streq (command, "PUBLISH") || streq (command, "SET")) {
        if (first && rest)
            zstr_sendx (actor, command, first, rest, NULL);
        else
            fprintf (stderr, "czmq_node: %s needs two arguments\n", command);
    }
    else
    if (streq (command, "BIND") || streq (command, "CONNECT")) {
        if (first)
            zstr_sendx (actor, command, first, NULL);
        else
            fprintf (stderr, "czmq_node: %s needs an endpoint\n", command);
    }
    else
        zstr_send (actor, command);
    return 0;
}

int
main (int argc, char *argv [])
{
    const char *name = argc > 1 ? argv [1] : "czmq";
    //  Unbuffered, so that every line waiting on stdin wakes zmq_poll.
    setvbuf (stdin, NULL, _IONBF, 0);
    zactor_t *actor = zactor_new (zgossip, (void *) name);
    assert (actor);
    printf ("READY\n");
    fflush (stdout);

    char line [4096];
    while (true) {
        zmq_pollitem_t items [] = {
            { zsock_resolve (actor), 0, ZMQ_POLLIN, 0 },
            { NULL, STDIN_FILENO, ZMQ_POLLIN, 0 }
        };
        if (zmq_poll (items, 2, -1) == -1)
            break;
        if (items [0].revents & ZMQ_POLLIN)
            s_print_reply (actor);
        if (items [1].revents & ZMQ_POLLIN) {
            if (!fgets (line, sizeof line, stdin))
                break;
            if (s_command (actor, line) == -1)
                break;
        }
    }
    zactor_destroy (&actor);
    return 0;
}
