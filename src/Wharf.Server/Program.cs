using Wharf.Server.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddWharf();

var app = builder.Build();
app.UseWharf();
app.MapWharf();
app.Run();
