//! A real S3-compatible server for tests: moto in server mode from the project's `.venv-moto`
//! (made by scripts/setup.sh). Shared by the snapshot store's unit tests and the console's API
//! tests, which include this file by path.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A moto S3 server (from the project's `.venv-moto`) with one bucket and one IAM user whose
/// keys work; every later request is checked against IAM, so wrong keys are refused.
pub struct Moto {
    _child: Child,
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

const MOTO_SETUP: &str = r#"
import json, sys, urllib.request, boto3
ep = sys.argv[1]
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="console")
iam.put_user_policy(UserName="console", PolicyName="snapshots", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="console")["AccessKey"]
boto3.client("s3", **kw).create_bucket(Bucket="snapshots")
urllib.request.urlopen(urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0", method="POST",
                                              headers={"Content-Type": "text/plain"}))
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

impl Moto {
    pub async fn start() -> Moto {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-moto/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup.sh",
            python.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto did not listen on {endpoint}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let out = Command::new(&python)
            .args(["-c", MOTO_SETUP, &endpoint])
            .output()
            .await
            .expect("moto setup script runs");
        assert!(
            out.status.success(),
            "moto setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut parts = text.split_whitespace();
        let access_key_id = parts.next().expect("access key id").to_string();
        let secret_access_key = parts.next().expect("secret").to_string();
        Moto {
            _child: child,
            endpoint,
            bucket: "snapshots".into(),
            access_key_id,
            secret_access_key,
        }
    }
}
