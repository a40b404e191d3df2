//! The libzmq we build has CURVE (our zmq-sys links it with libsodium): a
//! client with the server's public key gets through, one with another key
//! does not.

use zproto_runtime::reactor;

#[test]
fn libzmq_has_curve() {
    assert!(
        zmq::has("curve").unwrap_or(false),
        "libzmq built without libsodium"
    );
}

#[test]
fn a_curve_client_needs_the_servers_key() {
    let server_keys = zmq::CurveKeyPair::new().expect("keypair");
    let server = reactor::socket(zmq::ROUTER).expect("socket");
    server.set_linger(0).expect("linger");
    server.set_curve_server(true).expect("curve server");
    server
        .set_curve_secretkey(&server_keys.secret_key)
        .expect("secret key");
    server.set_rcvtimeo(5000).expect("timeout");
    server.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = server
        .get_last_endpoint()
        .expect("endpoint")
        .expect("utf-8");

    let client = |server_key: &[u8]| {
        let keys = zmq::CurveKeyPair::new().expect("keypair");
        let socket = reactor::socket(zmq::DEALER).expect("socket");
        socket.set_linger(0).expect("linger");
        socket.set_curve_serverkey(server_key).expect("server key");
        socket
            .set_curve_publickey(&keys.public_key)
            .expect("public key");
        socket
            .set_curve_secretkey(&keys.secret_key)
            .expect("secret key");
        socket.connect(&endpoint).expect("connect");
        socket
    };
    // A client that has another server key: its handshake fails, nothing
    // arrives. Sent first, so that a leak would arrive before the good one.
    let impostor = zmq::CurveKeyPair::new().expect("keypair");
    let wrong = client(&impostor.public_key);
    wrong.send("from the wrong key", zmq::DONTWAIT).ok();
    let right = client(&server_keys.public_key);
    right.send("hello", 0).expect("send");
    let frames = server.recv_multipart(0).expect("a message through CURVE");
    assert_eq!(frames[1], b"hello");
    assert_eq!(
        server.get_mechanism().expect("mechanism"),
        zmq::Mechanism::ZMQ_CURVE
    );
}
