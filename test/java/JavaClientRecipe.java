// The RabbitMQ Java client recipe of docs/clients.md, run against Tern by
// cmd/tern/clients_test.go (TestJavaClientRecipe) with Debian's
// librabbitmq-client-java:
//
//   java -cp /usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar JavaClientRecipe.java
//
// Automatic recovery across a broker restart (the connection, channel,
// queue and consumer come back by themselves), publisher confirms, and a
// consumer that acks. The broker is given by AMQP_URL; printing
// "tern:restart" asks the test to restart it.

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.MessageProperties;
import com.rabbitmq.client.Recoverable;
import com.rabbitmq.client.RecoveryListener;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

public class JavaClientRecipe {
    static final String QUEUE = "java-recipe";

    public static void main(String[] args) throws Exception {
        ConnectionFactory factory = new ConnectionFactory();
        factory.setUri(System.getenv().getOrDefault("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F"));
        factory.setRequestedHeartbeat(10);
        // Automatic and topology recovery are on by default since client
        // 4.0; the interval between reconnection attempts defaults to 5 s.
        factory.setAutomaticRecoveryEnabled(true);
        factory.setTopologyRecoveryEnabled(true);
        factory.setNetworkRecoveryInterval(500);

        try (Connection conn = factory.newConnection("java-recipe")) {
            CountDownLatch recovered = new CountDownLatch(1);
            ((Recoverable) conn).addRecoveryListener(new RecoveryListener() {
                public void handleRecovery(Recoverable r) { recovered.countDown(); }
                public void handleRecoveryStarted(Recoverable r) {}
            });

            Channel ch = conn.createChannel();
            ch.confirmSelect();
            ch.queueDeclare(QUEUE, true, false, false, null);
            ch.basicQos(10);

            BlockingQueue<String> received = new LinkedBlockingQueue<>();
            ch.basicConsume(QUEUE, false, (tag, delivery) -> {
                ch.basicAck(delivery.getEnvelope().getDeliveryTag(), false);
                received.add(new String(delivery.getBody(), StandardCharsets.UTF_8));
            }, tag -> {});

            publish(ch, "before restart");
            expect(received, "before restart");

            System.out.println("tern:restart");
            System.out.flush();
            String line = new BufferedReader(new InputStreamReader(System.in)).readLine();
            if (!"restarted".equals(line)) throw new IllegalStateException("no restart");
            if (!recovered.await(30, TimeUnit.SECONDS)) throw new IllegalStateException("connection not recovered");

            // The same Channel object works again, and the consumer is back.
            publish(ch, "after restart");
            // An ack still on its way when the broker stopped never reached
            // it, so "before restart" may come again first (at least once).
            expectSkipping(received, "after restart", "before restart");
            ch.queueDelete(QUEUE);
        }
        System.out.println("java client recipe: ok");
    }

    static void publish(Channel ch, String body) throws Exception {
        ch.basicPublish("", QUEUE, MessageProperties.PERSISTENT_TEXT_PLAIN, body.getBytes(StandardCharsets.UTF_8));
        ch.waitForConfirmsOrDie(10_000); // throws if nacked or not confirmed in time
    }

    static void expectSkipping(BlockingQueue<String> received, String want, String again) throws Exception {
        String got = received.poll(10, TimeUnit.SECONDS);
        if (again.equals(got)) got = received.poll(10, TimeUnit.SECONDS);
        if (!want.equals(got)) throw new IllegalStateException("got " + got + ", want " + want);
    }

    static void expect(BlockingQueue<String> received, String want) throws Exception {
        String got = received.poll(10, TimeUnit.SECONDS);
        if (!want.equals(got)) throw new IllegalStateException("got " + got + ", want " + want);
    }
}
