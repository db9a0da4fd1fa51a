// Prints Java's X500Principal.getName() for each DER-encoded X.500 name given in hex, one per
// line on standard input, as hex of the UTF-8 string on standard output (hex keeps control
// characters and separators intact). Run by certs/tests/java_dn.rs.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import javax.security.auth.x500.X500Principal;

public class DnCheck {
    public static void main(String[] args) throws Exception {
        HexFormat hex = HexFormat.of();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String name = new X500Principal(hex.parseHex(line.trim())).getName();
            System.out.println(hex.formatHex(name.getBytes(StandardCharsets.UTF_8)));
        }
    }
}
