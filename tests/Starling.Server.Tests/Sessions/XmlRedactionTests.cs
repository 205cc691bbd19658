using Starling.Server.Sessions;
using Starling.Xml;

namespace Starling.Server.Tests.Sessions;

public sealed class XmlRedactionTests
{
    [Theory]
    [InlineData("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>")]
    [InlineData("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9cA==</response>")]
    [InlineData("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1HVXBU</success>")]
    public void Sasl_payloads_are_redacted(string xml)
    {
        var element = XmlStreamParser.ParseElement(xml);
        var secret = element.Text;
        var logged = XmlRedaction.Redact(element);
        Assert.DoesNotContain(secret, logged, StringComparison.Ordinal);
        Assert.Contains("[redacted]", logged, StringComparison.Ordinal);
        Assert.Equal(secret, element.Text); // the element itself is untouched
    }

    [Fact]
    public void Passwords_anywhere_in_a_stanza_are_redacted()
    {
        var element = XmlStreamParser.ParseElement("<iq xmlns='jabber:client' type='set' id='r'><query xmlns='jabber:iq:register'><username>bill</username><password>Calliope</password></query></iq>");
        var logged = XmlRedaction.Redact(element);
        Assert.DoesNotContain("Calliope", logged, StringComparison.Ordinal);
        Assert.Contains("bill", logged, StringComparison.Ordinal);
        Assert.Contains("Calliope", element.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Ordinary_stanzas_are_logged_as_they_are()
    {
        var element = XmlStreamParser.ParseElement("<message xmlns='jabber:client' to='bob@localhost'><body>hola</body></message>");
        Assert.Equal(element.ToString(), XmlRedaction.Redact(element));
    }
}
