package broker

// Checks that change nothing, for an all-or-nothing import of definitions
// (the management API validates a whole file before applying any of it).

// CheckQueue reports whether declaring cfg in vhost (which may not exist
// yet) would be refused: its name, its arguments, a quorum queue's
// properties and, for an existing queue, equivalence.
func (b *Broker) CheckQueue(vhost string, cfg QueueConfig) error {
	v := b.VHost(vhost)
	if cfg.Name == "" {
		return errorf(KindInvalid, "a queue needs a name")
	}
	if reservedName(cfg.Name) {
		return errorf(KindAccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", cfg.Name)
	}
	a, err := parseQueueArgs(cfg.Name, vhost, cfg.Args)
	if err != nil {
		return err
	}
	if a.queueType == Stream && (b.cfg.Storage == nil || !cfg.Durable || cfg.Exclusive || cfg.AutoDelete) {
		return errorf(KindPreconditionFailed, "invalid arguments for stream '%s' in vhost '%s': a stream must be durable, not exclusive and not auto-delete, on a node with storage", cfg.Name, vhost)
	}
	if err := checkStreamArgs(vhost, cfg); err != nil {
		return err
	}
	if a.queueType == Quorum {
		if b.cfg.Replication.Quorum == nil {
			return errorf(KindPreconditionFailed, "invalid arg 'x-queue-type' for queue '%s' in vhost '%s': {unsupported_queue_type,quorum}", cfg.Name, vhost)
		}
		if err := checkQuorumLocked(&VHost{name: vhost}, cfg, &a); err != nil {
			return err
		}
	}
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if q := v.queue(cfg.Name); q != nil {
		return v.equivalentQueue(q, cfg)
	}
	return nil
}

// CheckExchange is CheckQueue for an exchange.
func (b *Broker) CheckExchange(vhost string, cfg ExchangeConfig) error {
	v := b.VHost(vhost)
	if cfg.Name == "" {
		return errorf(KindAccessRefused, "operation not permitted on the default exchange")
	}
	if _, err := routingKind(cfg); err != nil {
		return err
	}
	if err := checkExchangeArgs(cfg); err != nil {
		return err
	}
	if v == nil {
		if reservedName(cfg.Name) {
			return errorf(KindAccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", cfg.Name)
		}
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	x := v.exchange(cfg.Name)
	if x == nil {
		if reservedName(cfg.Name) {
			return errorf(KindAccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", cfg.Name)
		}
		return nil
	}
	return v.equivalentExchange(x, cfg)
}
