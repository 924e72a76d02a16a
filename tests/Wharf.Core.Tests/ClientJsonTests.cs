using System.Text;
using Wharf.Core.Json;

namespace Wharf.Core.Tests;

public sealed class ClientJsonTests
{
    private static readonly ClientJsonSource Body = new("body", "invalid_json", MaxDepth: 8, ParamIsPath: true);
    private static readonly ClientJsonSource Field = new("metadata", "invalid_metadata", MaxDepth: 4, ParamIsPath: false);

    private static byte[] Utf8With(string before, byte[] bad, string after) =>
        [.. Encoding.UTF8.GetBytes(before), .. bad, .. Encoding.UTF8.GetBytes(after)];

    [Theory]
    [InlineData("""{"name":"\ud800"}""", "name")]
    [InlineData("""{"name":"ok\udc00tail"}""", "name")]
    [InlineData("""{"name":"\ud800\ud800"}""", "name")]
    [InlineData("""{"part_ids":["a","\udfff"]}""", "part_ids[1]")]
    [InlineData("""{"expires_after":{"anchor":"\ud83d"}}""", "expires_after[anchor]")]
    [InlineData("""{"\ud800":"value"}""", "body")]
    [InlineData("""{"outer":{"\ud800":1}}""", "outer")]
    [InlineData("""["\ud800"]""", "[0]")]
    [InlineData("\"\\ud800\"", "body")]
    public void An_unpaired_surrogate_escape_is_refused_naming_where_it_is(string json, string param)
    {
        var result = ClientJson.Parse(Encoding.UTF8.GetBytes(json), Body);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal(param, result.Error.Param);
        Assert.Equal("invalid_json", result.Error.Code);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0xC3, 0x28 })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // a surrogate encoded in UTF-8 (CESU-8)
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98 })] // a sequence cut short
    public void Bytes_that_are_not_UTF8_are_refused_in_values_and_names(byte[] bad)
    {
        var value = ClientJson.Parse(Utf8With("{\"name\":\"a", bad, "b\"}"), Body);
        Assert.Equal("name", value.Error?.Param);
        var name = ClientJson.Parse(Utf8With("{\"a", bad, "\":1}"), Body);
        Assert.Equal("body", name.Error?.Param);
    }

    [Fact]
    public void A_valid_document_reads_without_surprises()
    {
        var result = ClientJson.Parse(Encoding.UTF8.GetBytes("""{"name":"h\u00e9llo \ud83d\ude00","n":1,"list":["x"],"nested":{"k":"\u65e5"}}"""), Body);
        Assert.True(result.IsOk);
        using var document = result.Value;
        Assert.Equal("h\u00e9llo \U0001F600", document.RootElement.GetProperty("name").GetString());
        Assert.Equal("\u65e5", document.RootElement.GetProperty("nested").GetProperty("k").GetString());
    }

    [Fact]
    public void Not_JSON_is_refused_with_the_sources_param_and_code()
    {
        var result = ClientJson.Parse(Encoding.UTF8.GetBytes("{nope"), Field);
        Assert.False(result.IsOk);
        Assert.Equal(("metadata", "invalid_metadata"), (result.Error.Param, result.Error.Code));
        var tooDeep = ClientJson.Parse(Encoding.UTF8.GetBytes("""{"a":{"b":{"c":{"d":{"e":"f"}}}}}"""), Field);
        Assert.Equal("metadata", tooDeep.Error?.Param);
    }

    [Fact]
    public void A_field_source_names_the_field_not_the_path()
    {
        var result = ClientJson.Parse(Encoding.UTF8.GetBytes("""{"k":"\ud800"}"""), Field);
        Assert.False(result.IsOk);
        Assert.Equal(("metadata", "invalid_metadata"), (result.Error.Param, result.Error.Code));
    }

    [Fact]
    public void A_string_with_an_unpaired_surrogate_is_refused_before_parsing()
    {
        var result = ClientJson.Parse("{\"k\":\"a\ud800b\"}", Field);
        Assert.Equal("metadata", result.Error?.Param);
        Assert.True(ClientJson.Parse("{\"k\":\"a\ud83d\ude00b\"}", Field).IsOk);
    }

    [Fact]
    public void A_long_property_name_is_cut_in_the_param_and_never_between_a_surrogate_pair()
    {
        string name = new string('n', 63) + "\U0001F600" + new string('m', 100);
        var result = ClientJson.Parse(Encoding.UTF8.GetBytes($$"""{"{{name}}":"\ud800"}"""), Body);
        Assert.False(result.IsOk);
        Assert.Equal(new string('n', 63) + "...", result.Error.Param);
        Assert.True(result.Error.Message.Length < 400);
    }

    [Fact]
    public async Task A_stream_is_read_and_checked_the_same_way()
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes("""{"scopes":["files:read","\ud800"]}"""));
        var result = await ClientJson.ParseAsync(stream, Body, CancellationToken.None);
        Assert.Equal("scopes[1]", result.Error?.Param);
    }
}
