//! The PostgreSQL history store against a real PostgreSQL server, started
//! per test on a free loopback port (tests/common/postgres.rs).

mod common;

use common::postgres::Postgres;

/// Connects the way a gateway does: the URL, and the password from the file.
fn connect(pg: &Postgres) -> Result<postgres::Client, postgres::Error> {
    let password = std::fs::read_to_string(pg.password_file()).unwrap();
    let mut config: postgres::Config = pg.url().parse().unwrap();
    config.password(password.lines().next().unwrap());
    config.connect(postgres::NoTls)
}

#[test]
fn a_server_starts_on_loopback_and_answers() {
    let pg = Postgres::start();
    assert!(pg.url().starts_with("postgres://flatback@127.0.0.1:"), "{}", pg.url());
    let mut client = connect(&pg).expect("connect with the password file");
    let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
    let (addr, db): (String, String) = {
        let row = client
            .query_one("SELECT host(inet_server_addr()), current_database()", &[])
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((addr.as_str(), db.as_str()), ("127.0.0.1", "flatback"));

    // The password is checked: a wrong one is refused.
    let mut wrong: postgres::Config = pg.url().parse().unwrap();
    wrong.password("not-the-password");
    let err = wrong
        .connect(postgres::NoTls)
        .err()
        .expect("a wrong password is refused");
    assert!(
        err.as_db_error()
            .is_some_and(|e| e.code() == &postgres::error::SqlState::INVALID_PASSWORD),
        "{err}"
    );
}

#[test]
fn a_server_stops_and_starts_again_with_its_data() {
    let mut pg = Postgres::start();
    let port = pg.port();
    let mut client = connect(&pg).unwrap();
    client
        .batch_execute("CREATE TABLE kept (n BIGINT); INSERT INTO kept VALUES (42);")
        .unwrap();

    pg.stop();
    assert!(!pg.is_running());
    // The open connection is gone, and a new one is refused.
    assert!(
        client.query_one("SELECT 1", &[]).is_err(),
        "a query on a stopped server"
    );
    assert!(connect(&pg).is_err(), "a connection to a stopped server");

    pg.start_again();
    assert_eq!(pg.port(), port);
    let mut client = connect(&pg).expect("connect after start_again");
    let n: i64 = client.query_one("SELECT n FROM kept", &[]).unwrap().get(0);
    assert_eq!(n, 42, "the data directory is the same");
}
