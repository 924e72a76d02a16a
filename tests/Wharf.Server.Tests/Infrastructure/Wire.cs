using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Wharf.Server.Tests.Infrastructure;

/// <summary>Small helpers to send raw requests and read the JSON Wharf answers with.</summary>
public static class Wire
{
    public static MultipartFormDataContent Form(string purpose, byte[] content, string filename = "f.txt", params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "file", filename);
        form.Add(new StringContent(purpose), "purpose");
        foreach (var (name, value) in fields)
        {
            form.Add(new StringContent(value), name);
        }
        return form;
    }

    public static async Task<JsonElement> UploadAsync(HttpClient client, string purpose = "assistants", string text = "hello", string filename = "f.txt", params (string Name, string Value)[] fields)
    {
        using var response = await client.PostAsync("/v1/files", Form(purpose, Encoding.UTF8.GetBytes(text), filename, fields));
        var json = await JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json;
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        string body = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(body);
        return document.RootElement.Clone();
    }

    /// <summary>Polls a file until its <c>sha256</c> is set (computed in the background after an upload); fails after 15 s.</summary>
    public static async Task<string> WaitForSha256Async(HttpClient client, string fileId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var file = await GetJsonAsync(client, $"/v1/files/{fileId}");
            if (file.GetProperty("sha256").GetString() is { } sha256)
            {
                return sha256;
            }
            Assert.True(DateTime.UtcNow < deadline, $"file {fileId} still has no sha256");
            await Task.Delay(20);
        }
    }

    public static async Task<JsonElement> GetJsonAsync(HttpClient client, string url)
    {
        using var response = await client.GetAsync(url);
        var json = await JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {json}");
        return json;
    }

    /// <summary>Asserts the Wharf error envelope and returns its <c>error</c> object.</summary>
    public static async Task<JsonElement> AssertErrorAsync(HttpResponseMessage response, int status, string? param = null, string? code = null)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.True(response.Headers.Contains("x-request-id"), "every response carries x-request-id");
        string requestId = response.Headers.GetValues("x-request-id").Single();
        var json = await JsonAsync(response);
        var error = json.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out _));
        Assert.True(error.TryGetProperty("code", out _));
        Assert.False(json.GetProperty("ok").GetBoolean());
        Assert.Equal(status, json.GetProperty("status_code").GetInt32());
        Assert.Equal(requestId, json.GetProperty("generation_id").GetString());
        Assert.Equal(requestId, json.GetProperty("event_id").GetString());
        Assert.Equal(status < 500 ? "user" : "system", json.GetProperty("error_type").GetString());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("reason").GetString()));
        if (param is not null)
        {
            Assert.Equal(param, error.GetProperty("param").GetString());
        }
        if (code is not null)
        {
            Assert.Equal(code, error.GetProperty("code").GetString());
        }
        return error;
    }

    public static string Id(this JsonElement file) => file.GetProperty("id").GetString()!;

    public static List<string> Ids(this JsonElement list) =>
        [.. list.GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()!)];
}
