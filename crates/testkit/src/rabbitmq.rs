//! Scratch RabbitMQ nodes on loopback, for the TLS tests (a TLS-only node)
//! and the fault suite's cluster (plain nodes that join one another). The
//! machine's own node is never touched: each scratch node has its own node
//! name, AMQP and distribution ports, data, log and home directories (its
//! Erlang cookie), a configuration file of its own (the machine's pins the
//! listener to 5672) and no plugins.
//!
//! As root, the node runs as `rabbitmq`, as the packaged scripts want.
//! Every process of a node is in one process group of its own, so that
//! killing the group is a crash of the node (SIGKILL) and takes nothing
//! else. Dropping the [`ScratchNode`] kills it and removes its directory;
//! so does a watchdog process when the test process ends first (a node
//! shared by a binary's tests, in a static, is never dropped).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::scratch::{chown, free_port, is_root, test_certificates};

/// Where the packaged server and tools are (Debian's layout).
const BIN: &str = "/usr/lib/rabbitmq/bin";

/// How long a node may take to start on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// What a node listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// AMQP over plain TCP.
    Plain,
    /// AMQP over TLS only, with the test certificates (see
    /// [`ScratchNode::ca`]).
    Tls,
}

/// A running (or killed, to be restarted) scratch node.
pub struct ScratchNode {
    dir: PathBuf,
    name: String,
    port: u16,
    listener: Listener,
    cookie: String,
    as_rabbitmq: bool,
    server: Option<Child>,
    watchdog: Option<Child>,
}

impl ScratchNode {
    /// Starts a node listening on `listener`, with `cookie` (the nodes of
    /// one cluster share one; `None` makes one) and `extra_config` lines
    /// in its `rabbitmq.conf`; panics, saying why, if it cannot.
    pub fn start(listener: Listener, cookie: Option<&str>, extra_config: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("objectsync-rabbitmq-{id}"));
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("scratch node directory");
        }
        let port = free_port();
        let dist_port = free_port();
        let cookie = cookie.map_or_else(|| id.to_uppercase(), str::to_owned);
        let listeners = match listener {
            Listener::Plain => format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
            Listener::Tls => {
                test_certificates(&dir);
                let d = dir.display();
                format!(
                    "listeners.tcp = none\nlisteners.ssl.local = 127.0.0.1:{port}\n\
                     ssl_options.cacertfile = {d}/ca.pem\nssl_options.certfile = {d}/server.crt\n\
                     ssl_options.keyfile = {d}/server.key\nssl_options.verify = verify_none\n\
                     ssl_options.fail_if_no_peer_cert = false\n"
                )
            }
        };
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).expect("scratch node file");
        };
        write("rabbitmq.conf", &format!("{listeners}{extra_config}\n"));
        write("enabled_plugins", "[].\n");
        write("rabbitmq-env.conf", "");
        write("dist_port", &dist_port.to_string());
        write("home/.erlang.cookie", &cookie);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("home/.erlang.cookie"),
            std::fs::Permissions::from_mode(0o400),
        )
        .expect("chmod .erlang.cookie");
        let as_rabbitmq = is_root();
        if as_rabbitmq {
            chown(&dir, "rabbitmq");
        }
        let mut node = Self {
            name: format!("objectsync-{}@localhost", &id[..12]),
            dir,
            port,
            listener,
            cookie,
            as_rabbitmq,
            server: None,
            watchdog: None,
        };
        node.watchdog = Some(node.spawn_watchdog());
        node.restart();
        node
    }

    /// The AMQP (or AMQPS) port, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Erlang node name (`objectsync-…@localhost`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Erlang cookie, for more nodes of the same cluster.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// `{scheme}://guest:guest@{host}:{port}/%2f`, then `?{params}` if any.
    pub fn url(&self, scheme: &str, host: &str, params: &str) -> String {
        let query = if params.is_empty() {
            String::new()
        } else {
            format!("?{params}")
        };
        format!("{scheme}://guest:guest@{host}:{}/%2f{query}", self.port)
    }

    /// The CA that signed a TLS node's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing the node has (PEM).
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// The end of the node's logs, for a failing test's message.
    pub fn log(&self) -> String {
        let mut text = std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default();
        let log = self.dir.join("log").join(format!("{}.log", self.name));
        text.push_str(&std::fs::read_to_string(log).unwrap_or_default());
        let mut start = text.len().saturating_sub(4_000);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }

    /// Crashes the node: SIGKILL to every process of it. Its data stays,
    /// for [`ScratchNode::restart`].
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", server.id())])
                .status();
            let _ = server.wait();
        }
    }

    /// Starts the node (again, after [`ScratchNode::kill`]) on its data and
    /// waits until it accepts connections; panics if it does not in time.
    pub fn restart(&mut self) {
        self.launch(None);
    }

    /// [`ScratchNode::restart`] at a higher CPU priority (`nice -n -10`,
    /// when run as root): a node booting on a machine whose cores are
    /// saturated by a load otherwise takes five times as long as on an idle
    /// one, which a node with cores of its own would not.
    pub fn restart_ahead(&mut self) {
        self.launch(Some(-10));
    }

    fn launch(&mut self, nice: Option<i32>) {
        self.kill();
        let out = std::fs::File::create(self.dir.join("out.log")).expect("out.log");
        let dist_port = std::fs::read_to_string(self.dir.join("dist_port")).expect("dist_port");
        let d = self.dir.display().to_string();
        // The AMQP port of a TLS node is in its configuration only: with
        // RABBITMQ_NODE_PORT it would listen in plain TCP too.
        let node_port = match self.listener {
            Listener::Plain => format!("RABBITMQ_NODE_PORT={}", self.port),
            Listener::Tls => "RABBITMQ_NODE_PORT=".into(),
        };
        let env = [
            format!("HOME={d}/home"),
            format!("RABBITMQ_NODENAME={}", self.name),
            node_port,
            format!("RABBITMQ_DIST_PORT={dist_port}"),
            format!("RABBITMQ_MNESIA_BASE={d}/mnesia"),
            format!("RABBITMQ_LOG_BASE={d}/log"),
            format!("RABBITMQ_CONFIG_FILE={d}/rabbitmq.conf"),
            format!("RABBITMQ_ADVANCED_CONFIG_FILE={d}/advanced.config"),
            format!("RABBITMQ_ENABLED_PLUGINS_FILE={d}/enabled_plugins"),
            format!("RABBITMQ_CONF_ENV_FILE={d}/rabbitmq-env.conf"),
            format!("RABBITMQ_PID_FILE={d}/pid"),
            "ERL_EPMD_ADDRESS=127.0.0.1".into(),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
                .into(),
        ];
        let mut command = self.command(&format!("{BIN}/rabbitmq-server"), &env);
        if let Some(n) = nice.filter(|_| self.as_rabbitmq) {
            let inner = command;
            command = Command::new("nice");
            command
                .args(["-n", &n.to_string(), "--"])
                .arg(inner.get_program())
                .args(inner.get_args());
        }
        let server = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("out.log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("rabbitmq-server (is the rabbitmq-server package installed?)");
        std::fs::write(self.dir.join("pgid"), server.id().to_string()).expect("pgid");
        self.server = Some(server);
        self.wait_until_listening();
    }

    /// Runs `rabbitmqctl -n <node> args…` with the node's cookie: its
    /// standard output, or what went wrong.
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let d = self.dir.display();
        let env = [
            format!("HOME={d}/home"),
            format!("RABBITMQ_CONF_ENV_FILE={d}/rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS=127.0.0.1".into(),
        ];
        let output = self
            .command(&format!("{BIN}/rabbitmqctl"), &env)
            .args(["-n", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("rabbitmqctl: {e}"))?;
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
            false => Err(format!(
                "rabbitmqctl {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }

    /// `program` with `env`, as `rabbitmq` when we are root.
    fn command(&self, program: &str, env: &[String]) -> Command {
        let mut command = match self.as_rabbitmq {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "rabbitmq", "--", "env"]);
                c
            }
            false => Command::new("env"),
        };
        command.args(env).arg(program);
        command
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = ("127.0.0.1", self.port);
        while std::net::TcpStream::connect(address).is_err() {
            let exited = self
                .server
                .as_mut()
                .and_then(|s| s.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "scratch RabbitMQ node {} did not start ({exited:?}):\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A process that, once the test process is gone, kills the node and
    /// removes its directory (in case no drop does).
    fn spawn_watchdog(&self) -> Child {
        let d = self.dir.display();
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
             env kill -KILL -- -$(cat {d}/pgid) 2>/dev/null; rm -rf {d}",
            parent = std::process::id()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("sh")
    }
}

impl Drop for ScratchNode {
    fn drop(&mut self) {
        self.kill();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
