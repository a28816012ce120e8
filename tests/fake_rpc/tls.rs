//! A throwaway PKI for the TLS side of the fake node, made with the `openssl`
//! CLI in a temporary directory: a CA, a server certificate it signed for
//! `127.0.0.1` and `localhost`, and an unrelated CA (for "a client that does not
//! trust this server" tests). EC P-256 keys: quick to make, accepted by every
//! TLS stack a client might use (OpenSSL, rustls).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of one PKI; removed when dropped.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    /// Makes the CA, the server certificate and the unrelated CA.
    pub fn make() -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("fake-rpc-tls-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir for the test PKI");
        let at = dir.path();
        for (name, subject) in [("ca", "/CN=klinecast test RPC CA"), ("other-ca", "/CN=an unrelated CA")] {
            let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
            #[rustfmt::skip]
            openssl(at, &[
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", subject, "-keyout", &key, "-out", &cert,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        #[rustfmt::skip]
        openssl(at, &[
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr",
        ]);
        std::fs::write(
            at.join("server.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write the server certificate extensions");
        #[rustfmt::skip]
        openssl(at, &[
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "server.cnf", "-out", "server.pem",
        ]);
        TestPki { dir }
    }

    /// The CA that signed the server certificate (give it to the client under
    /// test, e.g. as `--rpc-ca-file`).
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that signed nothing here: a client trusting only it must fail.
    pub fn other_ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// The server side: certificate for 127.0.0.1 / localhost and its key.
    pub fn acceptor(&self) -> native_tls::TlsAcceptor {
        let cert = std::fs::read(self.dir.path().join("server.pem")).expect("read server.pem");
        let key = std::fs::read(self.dir.path().join("server.key")).expect("read server.key");
        let identity = native_tls::Identity::from_pkcs8(&cert, &key).expect("server identity from PKCS#8 PEM");
        native_tls::TlsAcceptor::new(identity).expect("TLS acceptor")
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the openssl CLI (Debian package openssl)");
    assert!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}
