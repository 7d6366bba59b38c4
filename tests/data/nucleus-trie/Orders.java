import java.io.*; import java.util.*; import java.nio.charset.StandardCharsets;
public class Orders { public static void main(String[] a) throws Exception {
  BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
  PrintStream out = new PrintStream(System.out, true, "UTF-8"); String line;
  while ((line = r.readLine()) != null) { String[] f = line.split("\t", -1);
    Set<String> hs = new HashSet<>(); for (String x : f) hs.add(x);
    TreeMap<String,Integer> tm = new TreeMap<>(String.CASE_INSENSITIVE_ORDER); for (String x : f) tm.put(x, 1);
    java.util.concurrent.ConcurrentHashMap<String,Integer> cm = new java.util.concurrent.ConcurrentHashMap<>(); for (String x : f) cm.computeIfAbsent(x, k -> 1);
    out.println(String.join("\t", hs) + "\u0001" + String.join("\t", tm.keySet()) + "\u0001" + String.join("\t", cm.keySet())); } } }
