package amqp091

import "fmt"

// Method is one AMQP method with its arguments.
type Method interface {
	IDs() (classID, methodID uint16)
	Name() string
	HasContent() bool
	Synchronous() bool
	Decode(d *Decoder)
	Encode(e *Encoder)
}

// ErrUnknownMethod reports class and method ids the specification lacks.
type ErrUnknownMethod struct{ ClassID, MethodID uint16 }

func (e ErrUnknownMethod) Error() string {
	return fmt.Sprintf("amqp091: unknown method %d.%d", e.ClassID, e.MethodID)
}

// DecodeMethod decodes a method frame payload (class id, method id,
// arguments) into a new Method.
func DecodeMethod(payload []byte) (Method, error) {
	d := Decoder{buf: payload}
	classID, methodID := d.Short(), d.Short()
	if d.err != nil {
		return nil, d.err
	}
	m := NewMethod(classID, methodID)
	if m == nil {
		return nil, ErrUnknownMethod{classID, methodID}
	}
	m.Decode(&d)
	if d.err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name(), d.err)
	}
	return m, nil
}

// DecodeMethodInto decodes payload into m when the ids match, avoiding an
// allocation on hot paths (basic.publish, basic.ack). It reports false when
// the payload is another method.
func DecodeMethodInto(payload []byte, m Method) (bool, error) {
	var d Decoder
	return d.DecodeMethodInto(payload, m)
}

// DecodeMethodInto is DecodeMethodInto reusing d and its string cache: a
// connection keeps one Decoder so repeated exchange names and routing keys
// cost no allocation.
func (d *Decoder) DecodeMethodInto(payload []byte, m Method) (bool, error) {
	if len(payload) < 4 {
		return false, nil
	}
	c, id := m.IDs()
	if uint16(payload[0])<<8|uint16(payload[1]) != c || uint16(payload[2])<<8|uint16(payload[3]) != id {
		return false, nil
	}
	d.reset(payload)
	d.off = 4
	m.Decode(d)
	if d.err != nil {
		return true, fmt.Errorf("%s: %w", m.Name(), d.err)
	}
	return true, nil
}

// MethodIDs returns the class and method ids at the head of a method frame
// payload, or zeros when it is too short.
func MethodIDs(payload []byte) (classID, methodID uint16) {
	if len(payload) < 4 {
		return 0, 0
	}
	return uint16(payload[0])<<8 | uint16(payload[1]), uint16(payload[2])<<8 | uint16(payload[3])
}
