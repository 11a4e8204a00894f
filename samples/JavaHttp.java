// A Java 17 HTTP server (com.sun.net.httpserver) on 127.0.0.1 whose requests burn CPU in methods with
// distinctive names, for checking that samples in JIT-compiled code are named. Run it with frame pointers in
// compiled code, and ask the JVM for its perf map once the hot methods are compiled:
//
//   java -XX:+PreserveFramePointer -XX:CompileCommand=quiet \
//        -XX:CompileCommand=dontinline,JavaHttp::flamespan* -cp DIR JavaHttp PORT
//                                  (PORT 0 picks a free port; prints "listening PORT")
//   jcmd PID Compiler.perfmap      (writes /tmp/perf-PID.map)
//
// `dontinline` keeps each hot method in code of its own: C2 would otherwise inline them into the request
// handler once that is hot, and a perf map names only the outermost method of compiled code.
//
//   GET /burn?n=N   N rounds (default 100) of: flamespanSieveHeavy (≈ 75 %), flamespanMixLight (≈ 25 %)
//
// Stack of the hot code (leaf last), on a worker of the server's executor:
//   … Thread.run → ThreadPoolExecutor… → sun.net.httpserver… → JavaHttp$BurnHandler.handle →
//   JavaHttp.flamespanBurnRound → JavaHttp.flamespanSieveHeavy / JavaHttp.flamespanMixLight
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

public final class JavaHttp {
  private static final long[] DATA = new long[2048];

  static {
    for (int i = 0; i < DATA.length; i++) {
      DATA[i] = i * 0x9E3779B97F4A7C15L;
    }
  }

  /** Three units of work: a sieve of Eratosthenes over a fresh array, mixed into the accumulator. */
  static long flamespanSieveHeavy(long seed) {
    long acc = seed;
    for (int unit = 0; unit < 3; unit++) {
      boolean[] composite = new boolean[24576];
      for (int i = 2; i * i < composite.length; i++) {
        if (!composite[i]) {
          for (int j = i * i; j < composite.length; j += i) {
            composite[j] = true;
          }
        }
      }
      for (int i = 2; i < composite.length; i++) {
        if (!composite[i]) {
          acc = (acc ^ i) * 0x100000001B3L;
        }
      }
    }
    return acc;
  }

  /** One unit of work of the same cost: xorshift over a table. */
  static long flamespanMixLight(long seed) {
    long acc = seed;
    for (int round = 0; round < 6; round++) {
      for (long value : DATA) {
        acc ^= value;
        acc ^= acc << 13;
        acc ^= acc >>> 7;
        acc ^= acc << 17;
      }
    }
    return acc;
  }

  static long flamespanBurnRound(int rounds) {
    long acc = 1;
    for (int round = 0; round < rounds; round++) {
      acc = flamespanSieveHeavy(acc);
      acc = flamespanMixLight(acc);
    }
    return acc;
  }

  static final class BurnHandler implements HttpHandler {
    @Override
    public void handle(HttpExchange exchange) throws IOException {
      int rounds = 100;
      String query = exchange.getRequestURI().getRawQuery();
      if (query != null && query.startsWith("n=")) {
        rounds = Integer.parseInt(query.substring(2));
      }
      byte[] body =
          (Long.toHexString(flamespanBurnRound(rounds)) + "\n").getBytes(StandardCharsets.UTF_8);
      exchange.sendResponseHeaders(200, body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    }
  }

  public static void main(String[] args) throws IOException {
    int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
    // Headers and body go out in two writes: without TCP_NODELAY, Nagle and the client's delayed ACK add
    // 40 ms to every keep-alive request and the workers sit idle.
    System.setProperty("sun.net.httpserver.nodelay", "true");
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 128);
    server.createContext("/", new BurnHandler());
    server.setExecutor(Executors.newFixedThreadPool(2));
    server.start();
    System.out.println("listening " + server.getAddress().getPort());
    System.out.flush();
  }
}
