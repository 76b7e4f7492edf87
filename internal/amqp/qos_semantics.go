package amqp

import "github.com/tern-broker/tern/internal/wire/amqp091"

// specQosClient says whether a client means the specification's basic.qos
// rather than RabbitMQ's. RabbitMQ (and Tern) read global=false as a limit
// per consumer and global=true as a limit per channel; the specification
// reads them as per channel and per connection. kombu, and so Celery, asks
// for global=true only from a server whose product is RabbitMQ >= 3.3
// (kombu.transport.pyamqp: qos_semantics_matches_spec) and sends
// global=false to any other server expecting the specification's meaning,
// which is also what py-amqp documents for basic_qos. A worker consuming
// three queues on one channel would otherwise reserve three times its
// prefetch. So a client that says it is py-amqp (client property product)
// gets a channel-wide limit for global=false; global=true stays
// channel-wide, as Tern has no per-connection limit. Every other client
// (amqp091-go, pika, the Java client, …) gets RabbitMQ's meaning. The rule
// rests on what the client says about itself, never on guessing from its
// behaviour; see docs/design/amqp.md.
func specQosClient(props amqp091.Table) bool {
	product, _ := props["product"].(string)
	return product == "py-amqp"
}
