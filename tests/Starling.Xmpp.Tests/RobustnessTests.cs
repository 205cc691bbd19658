using System.Text;
using Starling.Xmpp.Sasl;

namespace Starling.Xmpp.Tests;

public class RobustnessTests
{
    private static IEnumerable<string> AllCodePoints()
    {
        for (int cp = 0; cp <= 0x10FFFF; cp += cp < 0x30000 ? 1 : 0x101)
        {
            if (cp is >= 0xD800 and <= 0xDFFF)
                continue;
            yield return char.ConvertFromUtf32(cp);
        }
    }

    [Fact]
    public void Every_code_point_is_handled_without_exceptions_and_idempotently()
    {
        var failures = new List<string>();
        foreach (string c in AllCodePoints())
        {
            string hex = $"U+{char.ConvertToUtf32(c, 0):X4}";
            try
            {
                if (Jid.TryNormalizeLocal("a" + c, out string? local) && (!Jid.TryNormalizeLocal(local, out string? again) || again != local))
                    failures.Add("local " + hex);
                if (Jid.TryNormalizeResource("a" + c, out string? res) && (!Jid.TryNormalizeResource(res, out string? again2) || again2 != res))
                    failures.Add("resource " + hex);
                if (Jid.TryNormalizeDomain("a" + c + ".example", out string? dom) && (!Jid.TryNormalizeDomain(dom, out string? again3) || again3 != dom))
                    failures.Add("domain " + hex);
                if (SaslPrep.TryNormalize("a" + c, out string? pw) && (!SaslPrep.TryNormalize(pw, out string? again4) || again4 != pw))
                    failures.Add("saslprep " + hex);
            }
            catch (Exception ex)
            {
                failures.Add(hex + ": " + ex.GetType().Name + " " + ex.Message);
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(50)) + $"\n({failures.Count} total)");
    }
}
