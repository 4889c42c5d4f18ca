-- post.lua — wrk script for the JSON transform: POSTs the same object every time.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"id":12345,"name":"benchmark order","tags":["red","green","blue"],"price":19.99,"qty":3,"active":true,"owner":{"name":"Ada","email":"ada@example.com","roles":["admin","dev"]},"items":[{"sku":"a-1","n":1,"w":0.5},{"sku":"b-2","n":2,"w":1.25},{"sku":"c-3","n":3,"w":2.0}],"note":null,"total":59.97}'
