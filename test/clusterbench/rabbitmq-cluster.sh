#!/bin/sh
# Three RabbitMQ nodes on one machine, clustered, for the quorum-queue
# comparison in docs/performance.md ("Cluster"). Debian's rabbitmq-server
# (apt-get install -y rabbitmq-server); run as any user: everything lives
# under $DIR, nothing under /var/lib/rabbitmq.
#
#   test/clusterbench/rabbitmq-cluster.sh start [DIR]   # AMQP on 127.0.0.1:5691-5693
#   test/clusterbench/rabbitmq-cluster.sh stop  [DIR]
#   test/clusterbench/rabbitmq-cluster.sh start-node I [DIR]  # one node again (after a kill -9)
#   test/clusterbench/rabbitmq-cluster.sh leader QUEUE [DIR]  # the quorum queue's leader's number
#
# Node i (1-3) is rabbit-cb<i>@localhost, AMQP port 5690+i, Erlang
# distribution port 25690+i; every node runs as a setsid daemon and writes
# its pid to $DIR/n<i>/pid.
set -eu
CMD=${1:?start, stop, start-node or leader}
case $CMD in start-node|leader) ARG=${2:?}; shift ;; esac
DIR=${2:-/tmp/clusterbench-rabbitmq}
RMQ=/usr/lib/rabbitmq/bin
export HOME=$DIR   # the Erlang cookie all three nodes and rabbitmqctl share

node_env() {
  i=$1
  export RABBITMQ_NODENAME=rabbit-cb$i@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$((5690 + i)) RABBITMQ_DIST_PORT=$((25690 + i)) \
    RABBITMQ_MNESIA_BASE=$DIR/n$i/mnesia RABBITMQ_LOG_BASE=$DIR/n$i/log \
    RABBITMQ_PID_FILE=$DIR/n$i/pid RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/n$i/enabled_plugins \
    RABBITMQ_CONFIG_FILE=$DIR/n$i/rabbitmq RABBITMQ_ADVANCED_CONFIG_FILE=$DIR/n$i/advanced.config \
    RABBITMQ_SERVER_START_ARGS="-kernel inet_dist_listen_min $((25690 + i)) -kernel inet_dist_listen_max $((25690 + i))"
}

case $CMD in
start)
  mkdir -p "$DIR"
  [ -f "$DIR/.erlang.cookie" ] || { head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/.erlang.cookie"; chmod 400 "$DIR/.erlang.cookie"; }
  for i in 1 2 3; do
    mkdir -p "$DIR/n$i/log"
    echo "[]." > "$DIR/n$i/enabled_plugins"
    printf 'loopback_users = none\nlisteners.tcp.default = 127.0.0.1:%d\n' $((5690 + i)) > "$DIR/n$i/rabbitmq.conf"
    echo "[]." > "$DIR/n$i/advanced.config"
    (node_env $i; setsid "$RMQ/rabbitmq-server" > "$DIR/n$i/stdout.log" 2>&1 < /dev/null &)
  done
  for i in 1 2 3; do
    (node_env $i; "$RMQ/rabbitmqctl" -n rabbit-cb$i@localhost wait "$DIR/n$i/pid" --timeout 120 > /dev/null)
  done
  for i in 2 3; do
    (node_env $i
     "$RMQ/rabbitmqctl" -n rabbit-cb$i@localhost stop_app > /dev/null
     "$RMQ/rabbitmqctl" -n rabbit-cb$i@localhost join_cluster rabbit-cb1@localhost
     "$RMQ/rabbitmqctl" -n rabbit-cb$i@localhost start_app > /dev/null)
  done
  (node_env 1; "$RMQ/rabbitmqctl" -n rabbit-cb1@localhost cluster_status)
  ;;
start-node)
  i=$ARG
  (node_env $i; setsid "$RMQ/rabbitmq-server" >> "$DIR/n$i/stdout.log" 2>&1 < /dev/null &)
  (node_env $i; "$RMQ/rabbitmqctl" -n rabbit-cb$i@localhost wait "$DIR/n$i/pid" --timeout 120 > /dev/null)
  ;;
leader)
  for i in 1 2 3; do
    out=$(node_env $i; "$RMQ/rabbitmqctl" -n rabbit-cb$i@localhost -q list_queues name leader 2>/dev/null | awk -v q="$ARG" '$1 == q {print $2}') || continue
    case $out in rabbit-cb?@localhost) echo "$out" | sed 's/rabbit-cb\(.\)@.*/\1/'; exit 0 ;; esac
  done
  exit 1
  ;;
stop)
  for i in 1 2 3; do
    (node_env $i; "$RMQ/rabbitmqctl" -n rabbit-cb$i@localhost stop > /dev/null 2>&1 || true)
  done
  ;;
*) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
