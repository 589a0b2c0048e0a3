//! A throwaway certificate authority and server certificate for TLS test servers, made with the
//! `openssl` command-line tool (no build-time dependency): a CA, and a certificate it signs for
//! `127.0.0.1` and `localhost`, valid for two days.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The files of a throwaway CA and the server certificate it signed, in one directory.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA's certificate (PEM): what a client trusts (`tls_ca=` in a store URL).
    pub ca: PathBuf,
    /// The server's certificate (PEM), for `127.0.0.1` and `localhost`.
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// The `openssl` binary, if there is one on `PATH`.
pub fn openssl_binary() -> Option<PathBuf> {
    super::find_on_path("openssl")
}

impl TestCerts {
    /// Makes a CA and a server certificate in `dir` (EC P-256 keys, two days).
    ///
    /// # Errors
    ///
    /// Why not: no `openssl` on `PATH`, or it failed (its output is in the message).
    pub fn generate(dir: &Path) -> Result<Self, String> {
        let openssl =
            openssl_binary().ok_or("no openssl binary on PATH to make test certificates")?;
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .map_err(|e| format!("{}: {e}", ext.display()))?;
        let [ca, ca_key, cert, key, csr, ext] = [
            "ca.pem",
            "ca.key",
            "server.pem",
            "server.key",
            "server.csr",
            "server.ext",
        ]
        .map(|name| dir.join(name).to_string_lossy().into_owned());
        let steps: [Vec<&str>; 3] = [
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
                .split_whitespace()
                .chain([
                    "-keyout",
                    &ca_key,
                    "-out",
                    &ca,
                    "-subj",
                    "/CN=wf throwaway test CA",
                ])
                .chain(["-addext", "basicConstraints=critical,CA:TRUE"])
                .chain(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .collect(),
            "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
                .split_whitespace()
                .chain(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"])
                .collect(),
            vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        ];
        for args in steps {
            let out = Command::new(&openssl)
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", openssl.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "openssl {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(TestCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        })
    }

    /// The `redis-server` arguments that serve TLS on `port` with these files (clients are not
    /// asked for certificates).
    pub fn server_args(&self, port: u16) -> Vec<String> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(&self.cert),
            "--tls-key-file".into(),
            path(&self.key),
            "--tls-ca-cert-file".into(),
            path(&self.ca),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    }
}
