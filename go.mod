module github.com/tern-broker/tern

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/rabbitmq/amqp091-go v1.16.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
)
