/*  czmq_bind: how CZMQ 4.2's zsock_bind resolves bind endpoints, for
    testkit/tests/bind.rs, which compares our runtime's resolution with it.

        czmq_bind ENDPOINT

    binds a ROUTER to ENDPOINT with zsock_bind and prints what it returned:
    the port bound (tcp), 0 (other transports) or -1 (failure), then exits.
*/
#include <czmq.h>

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: czmq_bind ENDPOINT\n");
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router)
        return 1;
    //  The endpoint comes from argv: never a format string.
    int rc = zsock_bind (router, "%s", argv [1]);
    printf ("%d\n", rc);
    zsock_destroy (&router);
    return 0;
}
