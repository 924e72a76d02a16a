using System.Text;
using System.Text.Json;
using Wharf.Core.Files;

namespace Wharf.Core.Tests;

public sealed class FileMetadataTests
{
    private static void AssertRejected(string json)
    {
        var result = FileMetadata.Parse(json);
        Assert.False(result.IsOk, $"accepted: {json}");
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("metadata", result.Error.Param);
        Assert.Equal("invalid_metadata", result.Error.Code);
    }

    private static string ObjectOf(int keys, Func<int, string>? key = null, Func<int, string>? value = null)
    {
        var pairs = new Dictionary<string, string>();
        for (int i = 0; i < keys; i++)
        {
            pairs[key?.Invoke(i) ?? "k" + i] = value?.Invoke(i) ?? "v" + i;
        }
        return JsonSerializer.Serialize(pairs);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void NullOrEmptyIsEmpty(string? json)
    {
        var result = FileMetadata.Parse(json);
        Assert.True(result.IsOk);
        Assert.Empty(result.Value);
    }

    [Fact]
    public void ValidObject()
    {
        var result = FileMetadata.Parse("""{"team":"search","env":"prod","note":"h\u00e9llo \u65e5\u672c","empty":""}""");
        Assert.True(result.IsOk);
        Assert.Equal(4, result.Value.Count);
        Assert.Equal("search", result.Value["team"]);
        Assert.Equal("prod", result.Value["env"]);
        Assert.Equal("h\u00e9llo \u65e5\u672c", result.Value["note"]);
        Assert.Equal("", result.Value["empty"]);
    }

    [Fact]
    public void EmptyObjectIsEmpty()
    {
        var result = FileMetadata.Parse("  { }  ");
        Assert.True(result.IsOk);
        Assert.Empty(result.Value);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("""["a","b"]""")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("""{"a":1}""")]
    [InlineData("""{"a":1.5}""")]
    [InlineData("""{"a":true}""")]
    [InlineData("""{"a":null}""")]
    [InlineData("""{"a":["x"]}""")]
    [InlineData("""{"a":{"b":"c"}}""")]
    [InlineData("""{"a":"b","c":{"d":{"e":{"f":"g"}}}}""")]
    [InlineData("{")]
    [InlineData("""{"a":"b" """)]
    [InlineData("""{"a":"b",}""")]
    [InlineData("""{a:"b"}""")]
    [InlineData("""{'a':'b'}""")]
    [InlineData("not json")]
    [InlineData("{} {}")]
    [InlineData("""{"a":"b"} x""")]
    [InlineData("""{"a":"b"}]""")]
    [InlineData("""{"a":"b","a":"c"}""")]
    [InlineData("""{"":"b"}""")]
    public void RejectedInputs(string json)
    {
        AssertRejected(json);
    }

    [Fact]
    public void SixteenKeysAcceptedSeventeenRejected()
    {
        var ok = FileMetadata.Parse(ObjectOf(16));
        Assert.True(ok.IsOk);
        Assert.Equal(16, ok.Value.Count);
        AssertRejected(ObjectOf(17));
    }

    [Fact]
    public void KeyLengthLimit()
    {
        string key64 = new('k', 64);
        var ok = FileMetadata.Parse(ObjectOf(1, key: _ => key64));
        Assert.True(ok.IsOk);
        Assert.Equal("v0", ok.Value[key64]);
        AssertRejected(ObjectOf(1, key: _ => new string('k', 65)));
    }

    [Fact]
    public void ValueLengthLimit()
    {
        string value512 = new('v', 512);
        var ok = FileMetadata.Parse(ObjectOf(1, value: _ => value512));
        Assert.True(ok.IsOk);
        Assert.Equal(value512, ok.Value["k0"]);
        AssertRejected(ObjectOf(1, value: _ => new string('v', 513)));
    }

    [Fact]
    public void LimitsCountCharactersNotBytes()
    {
        // 512 non-ASCII characters are 1024 UTF-8 bytes and still within the limit.
        string value = new('\u00e9', 512);
        var result = FileMetadata.Parse(ObjectOf(1, value: _ => value));
        Assert.True(result.IsOk);
        Assert.Equal(value, result.Value["k0"]);
        Assert.Equal(1024, Encoding.UTF8.GetByteCount(result.Value["k0"]));
    }

    [Fact]
    public void ErrorMessageDoesNotEchoAHugeKey()
    {
        string huge = new('x', 10_000);
        var result = FileMetadata.Parse($$"""{"{{huge}}":1}""");
        Assert.False(result.IsOk);
        Assert.True(result.Error.Message.Length < 500, "message echoes the whole key");
    }

    [Theory]
    [InlineData("""{"k":"\ud800"}""")]
    [InlineData("""{"k":"a\udc00"}""")]
    [InlineData("""{"\ud800":"v"}""")]
    [InlineData("""{"k":"v","bad":"\udfff"}""")]
    public void TextThatIsNotUnicodeIsRejectedNotThrown(string json)
    {
        AssertRejected(json);
    }

    [Fact]
    public void AStringHoldingAnUnpairedSurrogateIsRejected()
    {
        // Built at run time: an attribute argument cannot carry an unpaired surrogate.
        AssertRejected("{\"k\":\"a" + (char)0xD800 + "\"}");
    }

    [Fact]
    public void AnEscapedSurrogatePairIsText()
    {
        var result = FileMetadata.Parse("""{"k":"\ud83d\ude00"}""");
        Assert.True(result.IsOk);
        Assert.Equal("\U0001F600", result.Value["k"]);
    }

    [Fact]
    public void ErrorMessageNeverCutsAKeyBetweenASurrogatePair()
    {
        string key = new string('k', 63) + "\U0001F600" + new string('k', 10);
        var result = FileMetadata.Parse($$"""{"{{key}}":1}""");
        Assert.False(result.IsOk);
        Assert.DoesNotContain(result.Error.Message, char.IsSurrogate);
    }
}
