import com.aws.greengrass.authorization.WildcardTrie;
import com.aws.greengrass.authorization.AuthorizationHandler.ResourceLookupPolicy;
import java.io.*;
import java.nio.charset.StandardCharsets;
public class Harness {
  public static void main(String[] a) throws Exception {
    BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(System.out, true, "UTF-8");
    String line;
    while ((line = r.readLine()) != null) {
      String[] f = line.split("\t", -1);
      WildcardTrie t = new WildcardTrie();
      for (int i = 2; i < f.length; i++) t.add(f[i]);
      boolean ok = t.matches(f[1], f[0].equals("M") ? ResourceLookupPolicy.MQTT_STYLE : ResourceLookupPolicy.STANDARD);
      out.println(ok ? "1" : "0");
    }
  }
}
