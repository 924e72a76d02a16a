using System.Text;
using System.Text.Json;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Tests.Routing;

public sealed class ModelRequestTests
{
    private static Errors.WharfError Refused(string json) =>
        ModelRequest.Parse(ProviderCapability.ChatCompletions, Encoding.UTF8.GetBytes(json)).ErrorOf();

    [Theory]
    [InlineData("{\"model\":", "body", "invalid_json")]
    [InlineData("not json", "body", "invalid_json")]
    [InlineData("[1,2]", "body", "invalid_json")]
    [InlineData("{\"messages\":[]}", "model", "missing_required_parameter")]
    [InlineData("{\"model\":null}", "model", "missing_required_parameter")]
    [InlineData("{\"model\":42}", "model", "invalid_type")]
    [InlineData("{\"model\":[\"a\"]}", "model", "invalid_type")]
    [InlineData("{\"model\":\"\"}", "model", "invalid_value")]
    [InlineData("{\"model\":\"m\",\"provider\":7}", "provider", "invalid_type")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"content\":\"\\ud800\"}]}", "messages[0][content]", "invalid_json")]
    public void A_bad_body_is_a_400_naming_the_parameter(string json, string param, string code)
    {
        var error = Refused(json);
        Assert.Equal((400, param, code), (error.Status, error.Param, error.Code));
    }

    [Fact]
    public void Model_provider_and_stream_are_read()
    {
        using var request = RoutingRig.Request("{\"model\":\"openai/gpt-4o\",\"provider\":\"groq\",\"stream\":true}");
        Assert.Equal(("openai/gpt-4o", "groq", true), (request.Model, request.Provider, request.Stream));
        using var plain = RoutingRig.Request("{\"model\":\"m\",\"stream\":\"true\",\"provider\":null}");
        Assert.Equal(((string?)null, false), (plain.Provider, plain.Stream));
    }

    [Fact]
    public void The_body_sent_upstream_keeps_every_other_member_byte_for_byte()
    {
        string[] kept =
        [
            "\"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9 \\\"quoted\\\" \\n\",\"model\":\"inner stays\"}]",
            "\"temperature\":1.50e0",
            "\"metadata\":{\"provider\":\"inner provider stays\",\"n\":[1, 2 ,3]}",
            "\"stream\":true",
        ];
        string json = "{ \"provider\" : \"groq\", " + kept[0] + ",\n  \"model\": \"groq/llama\", " + kept[1] + ", " + kept[2] + " , " + kept[3] + "}";
        using var request = RoutingRig.Request(json);

        string sent = Encoding.UTF8.GetString(request.BodyFor("llama").Span);

        Assert.Equal("{" + kept[0] + ",\"model\":\"llama\"," + kept[1] + "," + kept[2] + "," + kept[3] + "}", sent);
    }

    [Theory]
    [InlineData("{\"provider\":\"p\"}")]
    [InlineData("{\"model\":\"x\",\"provider\":\"p\"}")]
    [InlineData("{\"provider\":\"p\",\"model\":\"x\"}")]
    [InlineData("{\"a\":1,\"provider\":\"p\",\"model\":\"x\",\"b\":{\"provider\":[1]}}")]
    public void The_provider_member_is_left_out_wherever_it_stands(string json)
    {
        var body = json.Contains("\"model\"", StringComparison.Ordinal) ? json : json.Replace("{", "{\"model\":\"x\",", StringComparison.Ordinal);
        using var request = RoutingRig.Request(body);
        using var sent = JsonDocument.Parse(request.BodyFor("new \"model\" \\ é"));
        Assert.False(sent.RootElement.TryGetProperty("provider", out _));
        Assert.Equal("new \"model\" \\ é", sent.RootElement.GetProperty("model").GetString());
        Assert.Equal(
            JsonDocument.Parse(body).RootElement.EnumerateObject().Count(p => p.Name is not "provider"),
            sent.RootElement.EnumerateObject().Count());
    }
}
