// The page's dynamic part: the products, asked of the API (an app server, then the database).
"use strict";

function show(products, servedBy) {
  const list = document.getElementById("products");
  list.replaceChildren(...products.map((product) => {
    const item = document.createElement("li");
    item.textContent = `${product.name}: ${product.price} €`;
    return item;
  }));
  document.getElementById("served-by").textContent = servedBy || "(unknown)";
}

function fail(reason) {
  const item = document.createElement("li");
  item.className = "error";
  item.textContent = `the products could not be loaded: ${reason}`;
  document.getElementById("products").replaceChildren(item);
}

fetch("/api/products", { headers: { Accept: "application/json" } })
  .then((response) => {
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json().then((products) => show(products, response.headers.get("X-Served-By")));
  })
  .catch((error) => fail(error.message));
